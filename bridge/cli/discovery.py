"""`legwave discovery`: print the Home Assistant discovery payload."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.cli.options import device_info

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `discovery` to the command line."""
    parser = sub.add_parser("discovery", help="print the Home Assistant discovery payload")
    parser.add_argument("--style", choices=["device", "per_component"], help="default: configured")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Print it as indented JSON."""
    from bridge.codec import pretty_json
    from bridge.discovery import component_payloads, device_payload

    info = device_info(settings)
    style = args.style or settings.homeassistant.discovery
    body = component_payloads(info) if style == "per_component" else device_payload(info)
    print(pretty_json(body))
    return 0
