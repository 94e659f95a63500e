"""`legwave selftest`: the commissioning self-test, from a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.cli.options import add_backend_option, add_fault_option, add_seed_option

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `selftest` to the command line."""
    parser = sub.add_parser(
        "selftest",
        help="check that every valve, sensor, heater and tube is wired to its own zone",
        description=(
            "Run the commissioning self-test on the configured hardware (no agent may be "
            "running on the state directory; with one, use legwave ctl selftest): each zone "
            "filled to about 10 mmHg alone, held and vented, each heater warmed and cut by the "
            "supply switch, the vibration motor. The report is kept in the state directory; "
            "on a Raspberry Pi no session starts until a self-test has passed on the wiring."
        ),
    )
    add_backend_option(parser)
    add_fault_option(parser, when="from the start (simulator only)")
    add_seed_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Run it and print the report; 1 when it did not pass."""
    from bridge.selftest import selftest_command

    return selftest_command(settings, fault_specs=args.fault, seed=args.seed, as_json=args.json)
