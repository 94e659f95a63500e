"""`legwave config check`: validate the configuration and print every problem."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bridge.cli.options import describe_broker

if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `config check` to the command line."""
    parser = sub.add_parser("config", help="configuration tools")
    config_sub = parser.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    config_sub.add_parser("check", help="validate the configuration and print every problem")
    parser.set_defaults(handler=run, settings_needed=False)


def run(args: argparse.Namespace) -> int:
    """0 and a summary when the configuration loads; 1 and every problem when not."""
    from bridge.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"{len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    where = args.config or "defaults and environment"
    print(f"configuration OK ({where}): {describe_broker(settings.mqtt.host, settings.mqtt.port)}")
    print(f"backend {settings.backend}, {len(settings.device.zones)} zones")
    if settings.backend != "sim":
        for where_set, pin in sorted(settings.pi.lines(), key=lambda item: item[1]):
            print(f"  GPIO{pin:<3} {where_set}")
    return 0
