"""`legwave simulate`: one whole session on the physics simulator, in virtual time."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bridge.cli.options import (
    add_fault_option,
    add_seed_option,
    add_setting_options,
    fail,
    setting_changes,
)
from device.backends.sim import FaultInjection, FaultSpecError
from device.settings import DeviceSettings, SessionSettings

if TYPE_CHECKING:
    import argparse

    from device.simulate import SimulationReport


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `simulate` to the command line."""
    parser = sub.add_parser(
        "simulate",
        help="run one whole session on the simulator in virtual time",
        description=(
            "Run one session on the physics simulator in virtual time and report it. "
            "A preset sets every field; the other options then change it."
        ),
    )
    add_setting_options(parser)
    add_fault_option(parser, when="a third into the session")
    add_seed_option(parser)
    parser.add_argument("--plot", metavar="FILE.png", help="write a plot of the session")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run, settings_needed=False)


def run(args: argparse.Namespace) -> int:
    """Run the session and print its report (or JSON); 2 with the reason on a bad option."""
    device = DeviceSettings()
    changes = setting_changes(args)
    try:
        # As in a command: the preset applies first, then the options adjust it.
        settings = SessionSettings().with_changes(preset=args.preset, **changes)
        device.check_session(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        return fail(problems)
    except ValueError as exc:
        return fail(str(exc))
    try:
        faults = [
            FaultInjection.parse(
                spec, zones=device.zones, default_at_s=settings.duration_min * 20.0
            )
            for spec in args.fault
        ]
    except FaultSpecError as exc:
        return fail(str(exc))
    if args.plot:
        from bridge.plot import PlotUnavailableError, check_plotting

        try:
            check_plotting()
        except PlotUnavailableError as exc:
            return fail(str(exc))
        folder = Path(args.plot).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            # said now, not after the whole run
            return fail(f"--plot: cannot write into {folder}: no such folder, or not writable")

    from device.simulate import simulate

    bar = None if args.json or not sys.stderr.isatty() else _ProgressBar()
    report = simulate(
        settings,
        device=device,
        faults=faults,
        seed=args.seed,
        trace_every=5 if args.plot else None,
        progress=bar,
    )
    if bar is not None:
        bar.done()
    if args.plot:
        from bridge.plot import plot_session

        plot_session(report, args.plot)
    if args.json:
        from bridge.codec import pretty_json

        print(pretty_json(report.to_json()))
    else:
        print(_summary(report, plot=args.plot))
    return 0


class _ProgressBar:
    """A one-line progress bar on stderr."""

    width = 40

    def __call__(self, fraction: float) -> None:
        filled = round(fraction * self.width)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%}")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")


def _summary(r: SimulationReport, *, plot: str | None) -> str:
    s = r.settings
    minutes = r.duration_s / 60.0
    lines = [
        f"legwave simulated session {r.session_id}",
        f"  settings   preset={s.preset or '-'} mode={s.mode} intensity={s.intensity} "
        f"heat={s.heat} vibration={s.vibration} posture={s.posture} {s.duration_min} min",
        f"  result     {r.end_reason} after {minutes:.1f} simulated min "
        f"in {r.wall_s:.2f} s ({r.duration_s / max(r.wall_s, 1e-9):.0f}x real time), "
        f"{r.cycles} cycles",
        "  zone         max mmHg   max target",
    ]
    for zone in r.zones:
        lines.append(
            f"  {zone:<12} {r.max_pressure_mmhg[zone]:8.1f}   {r.max_target_mmhg[zone]:10.1f}"
        )
    lines.append(f"  overshoot  {r.overshoot_mmhg:.2f} mmHg above target at most")
    if r.max_heater_c is not None:
        lines.append(f"  heater     {r.max_heater_c:.1f} °C at most")
    for inj in r.injected:
        where = f" on {inj['target']}" if inj["target"] else ""
        lines.append(f"  injected   {inj['fault']}{where} at {inj['at_s']:.0f} s")
    for f in r.faults:
        lines.append(f"  fault      {f['code']} at {f['at_s']:.0f} s")
    vent = f" ({r.vent_s:.1f} s after the end)" if r.vent_s is not None else ""
    lines.append(f"  sleeves    {'vented' if r.vented else 'NOT vented'}{vent}")
    if plot:
        lines.append(f"  plot       {plot}")
    return "\n".join(lines)
