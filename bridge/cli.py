"""The `legwave` command line."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bridge.config import ConfigError, load_settings
from device import __version__
from device.backends import BACKENDS, PI_BACKENDS
from device.backends.sim import FaultInjection, FaultSpecError
from device.control.massager import Action
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
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("LEGWAVE_CONFIG"),
        metavar="FILE.yaml",
        help="configuration file (default: $LEGWAVE_CONFIG); LEGWAVE_… variables override it",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the device and its MQTT agent")
    run.add_argument(
        "--backend",
        choices=BACKENDS,
        help="sim (default), or on a Raspberry Pi gpiozero (any Pi) or rpigpio; "
        "overrides the configuration's backend",
    )
    doctor = sub.add_parser(
        "doctor", help="check a Raspberry Pi install: libraries, pins, sensors, broker"
    )
    doctor.add_argument("--backend", choices=PI_BACKENDS, help="default: the configured one")
    selftest = sub.add_parser(
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
    _bench_options(selftest)
    selftest.add_argument("--json", action="store_true", help="print the report as JSON")
    cal = sub.add_parser(
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
    _bench_options(cal)
    cal.add_argument(
        "--zone", action="append", default=[], help="only this zone (repeatable; default: all)"
    )
    cal.add_argument(
        "--reference",
        type=float,
        metavar="MMHG",
        help="the span point the gauge must read, 5-40 mmHg (default 30)",
    )
    cal.add_argument("--raw", action="store_true", help="live raw readings (Ctrl-C to leave)")
    cal.add_argument("--once", action="store_true", help="with --raw: one line and exit")
    plant = sub.add_parser(
        "plant",
        help="serve a simulated board on a Unix socket, for legwave run --backend plant",
        description=(
            "Run the simulator behind emulated GPIO lines and ADS1115 chips (the configured "
            "wiring) until SIGTERM. A client's lines are released when its connection closes, "
            "as a Pi's are when a process dies."
        ),
    )
    plant.add_argument("--socket", type=Path, help="default: plant.sock in the state dir")
    plant.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[:ZONE]@SECONDS",
        help="inject a hardware fault, seconds after the start (repeatable)",
    )
    plant.add_argument("--seed", type=int, default=0, help="sensor-noise seed")
    ctl = sub.add_parser("ctl", help="send a command to a running agent and print the response")
    ctl.add_argument("action", choices=[*(a.value for a in Action), "set"])
    _setting_options(ctl)
    ctl.add_argument(
        "--timeout", type=seconds, default=5.0, help="seconds to wait for the response"
    )
    watch = sub.add_parser("watch", help="live view of the running device (Ctrl-C to leave)")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    watch.add_argument("--timeout", type=seconds, default=10.0, help="with --once: give up after")
    disc = sub.add_parser("discovery", help="print the Home Assistant discovery payload")
    disc.add_argument("--style", choices=["device", "per_component"], help="default: configured")
    sub.add_parser("remove", help="clear every retained message the device owns from the broker")
    sub.add_parser(
        "registrar",
        help="check devices' discovery and pass it on to Home Assistant (the compose stack)",
        description=(
            "Watch legwave/+/discovery and publish each device's payload under the discovery "
            "prefix if every topic in it is the device's own (homeassistant.discovery: "
            "registrar on the devices). Runs with an account of its own until SIGTERM."
        ),
    )
    health = sub.add_parser("health", help="exit 0 while the device says online on the broker")
    health.add_argument("--timeout", type=seconds, default=5.0)
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    config_sub.add_parser("check", help="validate the configuration and print every problem")
    sim = sub.add_parser(
        "simulate",
        help="run one whole session on the simulator in virtual time",
        description=(
            "Run one session on the physics simulator in virtual time and report it. "
            "A preset sets every field; the other options then change it."
        ),
    )
    _setting_options(sim)
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


def _bench_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commissioning commands: the backend, and the simulator's faults."""
    parser.add_argument("--backend", choices=BACKENDS, help="default: the configured one")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[:ZONE]",
        help="simulator only: a wiring (or hardware) fault to find (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="simulator noise seed")


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above zero (not ``nan``, not ``inf``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0 or value > 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0 and 3600")
    return value


_SETTINGS = ("mode", "intensity", "heat", "vibration", "duration_min", "posture", "zone_boost")


def _setting_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a preset")
    parser.add_argument("--mode", choices=[m.value for m in Mode])
    parser.add_argument("--intensity", type=int, metavar="1-7")
    parser.add_argument("--heat", choices=[h.value for h in Heat])
    parser.add_argument("--vibration", choices=[v.value for v in Vibration])
    parser.add_argument("--duration-min", type=int, metavar="5-60")
    parser.add_argument("--posture", choices=["lying", "seated"])
    parser.add_argument("--zone-boost", metavar="ZONE")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `legwave` console script."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away (`legwave discovery | head`): stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "config":
        return _config_check(args)
    overrides = {"backend": args.backend} if getattr(args, "backend", None) else {}
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigError as exc:
        return _fail("the configuration has problems:\n  " + "\n  ".join(exc.problems))
    from bridge import commands

    try:
        return commands.dispatch(args, settings)
    except ConfigError as exc:
        return _fail("\n  ".join(exc.problems))


def _config_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"{len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    where = args.config or "defaults and environment"
    print(f"configuration OK ({where}): {describe_broker(settings.mqtt.host, settings.mqtt.port)}")
    print(f"backend {settings.backend}, {len(settings.device.zones)} zones")
    if settings.backend != "sim":
        for where_set, pin in sorted(settings.pi.lines(), key=lambda item: item[1]):
            print(f"  GPIO{pin:<3} {where_set}")
    return 0


def setting_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The session-setting options given on the command line."""
    return {name: getattr(args, name) for name in _SETTINGS if getattr(args, name) is not None}


def describe_broker(host: str | None, port: int) -> str:
    """Which broker `legwave run` will use, as it will decide it."""
    if host:
        return f"broker {host}:{port}"
    from bridge.broker import port_open

    if port_open(port):
        return f"broker 127.0.0.1:{port} (none configured: the one already listening there)"
    return f"broker 127.0.0.1:{port} (none configured: legwave run starts its own mosquitto)"


def _fail(message: str) -> int:
    print(f"legwave: error: {message}", file=sys.stderr)
    return 2


def _simulate(args: argparse.Namespace) -> int:
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
        folder = Path(args.plot).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            # said now, not after the whole run
            return _fail(f"--plot: cannot write into {folder}: no such folder, or not writable")

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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
