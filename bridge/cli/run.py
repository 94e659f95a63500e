"""`legwave run`: the device and its MQTT agent, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from bridge.cli.options import add_backend_option

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `run` to the command line."""
    parser = sub.add_parser("run", help="run the device and its MQTT agent")
    add_backend_option(
        parser,
        what="sim (default), or on a Raspberry Pi gpiozero (any Pi) or rpigpio; overrides the "
        "configuration's backend",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Serve until signalled; 2 with one line when it cannot start; 75 to start a new release."""
    from bridge.broker import BrokerUnavailableError
    from bridge.service import DuplicateAgentError, StateDirectoryInUseError, serve
    from device.backends import HardwareUnavailableError

    try:
        return asyncio.run(serve(settings))
    except (
        BrokerUnavailableError,
        HardwareUnavailableError,
        StateDirectoryInUseError,
        DuplicateAgentError,
    ) as exc:
        print(f"legwave: error: {exc}", file=sys.stderr)
        return 2
