"""`legwave plant`: a simulated board on a Unix socket, for `legwave run --backend plant`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.cli.options import add_fault_option, add_seed_option, fail, until_signalled

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `plant` to the command line."""
    parser = sub.add_parser(
        "plant",
        help="serve a simulated board on a Unix socket, for legwave run --backend plant",
        description=(
            "Run the simulator behind emulated GPIO lines and ADS1115 chips (the configured "
            "wiring) until SIGTERM. A client's lines are released when its connection closes, "
            "as a Pi's are when a process dies."
        ),
    )
    parser.add_argument("--socket", type=Path, help="default: plant.sock in the state dir")
    add_fault_option(parser, when="from the start")
    add_seed_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Serve the simulated board until SIGINT/SIGTERM."""
    from device.backends.plant.server import PlantServer
    from device.backends.sim import FaultInjection, FaultSpecError

    try:
        faults = [
            FaultInjection.parse(spec, zones=settings.device.zones, default_at_s=0.0)
            for spec in args.fault
        ]
    except FaultSpecError as exc:
        return fail(str(exc))
    path = args.socket or settings.plant_path
    path.parent.mkdir(parents=True, exist_ok=True)
    server = PlantServer(
        socket_path=path, device=settings.device, config=settings.pi, faults=faults, seed=args.seed
    )
    print(f"simulated board on {path}", file=sys.stderr, flush=True)
    asyncio.run(until_signalled(server.run))
    return 0
