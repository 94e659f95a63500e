"""The `legwave` command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from device import __version__
from device.backends.sim import FaultInjection, FaultSpecError
from device.settings import PRESETS, DeviceSettings, Heat, Mode, SessionSettings, Vibration

if TYPE_CHECKING:
    from collections.abc import Sequence

    from device.simulate import SimulationReport


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="legwave",
        description="Smart-home controller for air-compression leg massagers.",
    )
    parser.add_argument("--version", action="version", version=f"legwave {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim = sub.add_parser(
        "simulate",
        help="run one whole session on the simulator in virtual time",
        description=(
            "Run one session on the physics simulator in virtual time and report it. "
            "A preset sets every field; the other options then change it."
        ),
    )
    sim.add_argument("--preset", choices=sorted(PRESETS), help="start from a preset")
    sim.add_argument("--mode", choices=[m.value for m in Mode])
    sim.add_argument("--intensity", type=int, metavar="1-7")
    sim.add_argument("--heat", choices=[h.value for h in Heat])
    sim.add_argument("--vibration", choices=[v.value for v in Vibration])
    sim.add_argument("--duration-min", type=int, metavar="5-60")
    sim.add_argument("--posture", choices=["lying", "seated"])
    sim.add_argument("--zone-boost", metavar="ZONE")
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[:ZONE][@SECONDS]",
        help="inject a hardware fault (repeatable); default time: a third into the session",
    )
    sim.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sim.add_argument("--plot", metavar="FILE.png", help="write a plot of the session")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `legwave` console script."""
    args = _parser().parse_args(argv)
    if args.command == "simulate":
        return _simulate(args)
    return 2  # pragma: no cover - argparse requires a command


def _fail(message: str) -> int:
    print(f"legwave: error: {message}", file=sys.stderr)
    return 2


def _simulate(args: argparse.Namespace) -> int:
    device = DeviceSettings()
    changes: dict[str, Any] = {}
    for name in ("mode", "intensity", "heat", "vibration", "duration_min", "posture", "zone_boost"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    try:
        # As in a command: the preset applies first, then the options adjust it.
        settings = SessionSettings().with_changes(preset=args.preset, **changes)
        device.check_session(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        return _fail(problems)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        faults = [
            FaultInjection.parse(
                spec, zones=device.zones, default_at_s=settings.duration_min * 20.0
            )
            for spec in args.fault
        ]
    except FaultSpecError as exc:
        return _fail(str(exc))
    if args.plot:
        from bridge.plot import PlotUnavailableError, check_plotting

        try:
            check_plotting()
        except PlotUnavailableError as exc:
            return _fail(str(exc))

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
        print(json.dumps(report.to_json(), indent=2))
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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
