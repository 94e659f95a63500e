"""`legwave registrar`: check devices' discovery and pass it on to Home Assistant."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bridge.cli.options import broker_address, until_signalled

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `registrar` to the command line."""
    parser = sub.add_parser(
        "registrar",
        help="check devices' discovery and pass it on to Home Assistant (the compose stack)",
        description=(
            "Watch legwave/+/discovery and publish each device's payload under the discovery "
            "prefix if every topic in it is the device's own (homeassistant.discovery: "
            "registrar on the devices). Runs with an account of its own until SIGTERM."
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Serve until SIGINT/SIGTERM."""
    from bridge.registrar import Registrar

    host, port = broker_address(settings)
    registrar = Registrar(settings=settings, host=host, port=port)
    asyncio.run(until_signalled(registrar.run))
    return 0
