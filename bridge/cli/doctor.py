"""`legwave doctor`: check a Raspberry Pi install and say what to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.cli.options import add_backend_option
from device.backends import PI_BACKENDS

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `doctor` to the command line."""
    parser = sub.add_parser(
        "doctor", help="check a Raspberry Pi install: libraries, pins, sensors, broker"
    )
    add_backend_option(parser, choices=PI_BACKENDS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Print the report; 1 when a check failed."""
    from bridge.doctor import run_checks

    return run_checks(settings, backend=args.backend)
