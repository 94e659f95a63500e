"""`legwave remove`: clear every retained message the device owns from the broker."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from bridge.cli.options import broker_address, device_info

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `remove` to the command line."""
    parser = sub.add_parser(
        "remove", help="clear every retained message the device owns from the broker"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Clear them (Home Assistant then forgets the device); 3 when the broker is away."""
    from bridge.agent import remove_retained
    from bridge.transport import MqttError

    info = device_info(settings)
    host, port = broker_address(settings)
    try:
        count = asyncio.run(remove_retained(settings, info, host, port))
    except MqttError as exc:
        print(f"legwave: error: cannot reach the broker at {host}:{port}: {exc}", file=sys.stderr)
        return 3
    print(f"cleared {count} retained topics of {info.device_id}")
    return 0
