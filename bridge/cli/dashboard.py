"""`legwave dashboard`: print the Home Assistant dashboard of this massager."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dashboard` to the command line."""
    parser = sub.add_parser(
        "dashboard",
        help="print the Home Assistant dashboard of this massager (its entity ids follow its name)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Print it: paste it into a dashboard's raw configuration editor."""
    from bridge.dashboard import dashboard_yaml

    print(dashboard_yaml(settings.homeassistant.name), end="")
    return 0
