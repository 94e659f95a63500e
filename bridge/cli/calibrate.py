"""`legwave calibrate`: each pressure channel against a reference gauge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.cli.options import add_backend_option, add_fault_option, add_seed_option

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `calibrate` to the command line."""
    parser = sub.add_parser(
        "calibrate",
        help="calibrate each pressure channel against a reference gauge; --raw: raw readings",
        description=(
            "Per zone: vent, zero, inflate slowly until the reference gauge (a "
            "sphygmomanometer on the zone's tube; the simulator has its own) reads the span "
            "point, hold, and compare. Each channel's gain is kept in the state directory; a "
            "reading more than 15 %% from the gauge is refused with its likely causes. Stop the "
            "agent first: calibration moves air on its own."
        ),
    )
    add_backend_option(parser)
    add_fault_option(parser, when="from the start (simulator only)")
    add_seed_option(parser)
    parser.add_argument(
        "--zone", action="append", default=[], help="only this zone (repeatable; default: all)"
    )
    parser.add_argument(
        "--reference",
        type=float,
        metavar="MMHG",
        help="the span point the gauge must read, 5-40 mmHg (default 30)",
    )
    parser.add_argument("--raw", action="store_true", help="live raw readings (Ctrl-C to leave)")
    parser.add_argument("--once", action="store_true", help="with --raw: one line and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Calibrate (or show raw readings)."""
    from bridge.calibrate import calibrate_command

    return calibrate_command(
        settings,
        zones=args.zone,
        reference=args.reference,
        raw=args.raw,
        once=args.once,
        fault_specs=args.fault,
        seed=args.seed,
    )
