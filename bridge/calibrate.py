"""`legwave calibrate`: each pressure channel against a reference gauge, and its raw readings.

Per zone: vent, zero (the mean reading with the sleeves vented), then inflate that zone slowly
until the reference gauge reads the span point (≤ 40 mmHg), hold, and compare. The gain that makes
the channel read what the gauge reads is kept in the state directory, where the agent applies it;
a reading more than 15 % from the gauge is not a calibration but a fault, refused with its likely
causes. The gauge is a person at a sphygmomanometer on a Pi (press Enter when it shows the span
point, then type what it shows once held), or the simulator's own.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from device.calibration import MAX_ERROR, Calibration, ChannelCalibration
from device.hal import Orders
from device.store import claim, load_calibration, save_calibration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bridge.config import AgentSettings
    from device.hal import Hardware

PERIOD_S = 0.02
PUMP_DUTY = 0.55
"""Slow: a person watching a gauge must be able to press Enter at the right moment."""
INFLATE_TIMEOUT_S = 40.0
VENT_BELOW_MMHG = 3.0
MAX_REFERENCE_MMHG = 40.0


@dataclass(frozen=True, slots=True)
class Span:
    """One zone's span point: what the channel read and what the gauge read.

    The channel's readings are mmHg by the datasheet's curve (an MPX5050), or counts (an
    HX710B, whose board has no curve: the span is its scale).
    """

    zone: str
    zero_mmhg: float
    reading_mmhg: float
    reference_mmhg: float

    @property
    def error(self) -> float:
        """How far the channel is from the gauge, as a fraction of the gauge's reading."""
        return self.reading_mmhg / self.reference_mmhg - 1.0

    def counts_problem(self, expected: float | None) -> str | None:
        """Why an HX710B span cannot be its scale, or None."""
        scale = self.reading_mmhg / self.reference_mmhg
        if abs(scale) < 1:
            return (
                f"{self.zone}: moved {self.reading_mmhg:.0f} counts while the reference rose to "
                f"{self.reference_mmhg:.1f} mmHg: the channel does not see this zone (a dead "
                "board, its tube off, or tubes or data lines swapped: legwave selftest tells which)"
            )
        if expected is not None and abs(scale / expected - 1.0) > MAX_ERROR:
            return (
                f"{self.zone}: {scale:.0f} counts per mmHg, {scale / expected - 1.0:+.0%} from "
                f"pi.pressure.counts_per_mmhg ({expected:g}): not calibrated. Likely: a wrong "
                "counts_per_mmhg in the configuration (leave it out), or another board"
            )
        return None

    def problem(self, sensor: str) -> str | None:
        """Why this span cannot be a calibration, or None."""
        if abs(self.error) <= MAX_ERROR:
            return None
        head = (
            f"{self.zone}: reads {self.reading_mmhg:.1f} mmHg where the reference reads "
            f"{self.reference_mmhg:.1f} ({self.error:+.0%} from the {sensor}'s curve, more "
            f"than {MAX_ERROR:.0%}): not calibrated. Likely: "
        )
        if 1.0 + self.error < 0.2:
            return (
                f"{self.zone}: read {self.reading_mmhg:.1f} mmHg while the reference rose to "
                f"{self.reference_mmhg:.1f}: the channel does not see this zone. Likely: a dead "
                "sensor or its tube off, or the zone's tubes or sensor channels swapped with "
                "another zone's (legwave selftest tells which)"
            )
        if 0.4 <= 1.0 + self.error <= 0.6:
            return head + (
                "the divider is wired inverted (it should be 10 kΩ from Vout and 20 kΩ to "
                "GND; inverted it passes a third, not two thirds, and the channel reads half); "
                "or a sensor of twice the MPX5050's range; or a lower supply than sensor.supply_v"
            )
        if self.error < 0:
            return head + (
                "a sensor with a wider range than the MPX5050, a divider other than "
                "sensor.series_ohm and to_ground_ohm, or a lower supply than sensor.supply_v"
            )
        return head + (
            "a sensor with a narrower range than the MPX5050, a divider other than "
            "sensor.series_ohm and to_ground_ohm, or a higher supply than sensor.supply_v"
        )


class CalibrationAborted(RuntimeError):
    """The procedure had to stop (a reading too high, no rise in time); the zone is vented."""


class Bench:
    """The hardware, a clock that moves, and a reference gauge for one zone at a time."""

    def __init__(
        self,
        hardware: Hardware,
        *,
        tick: Callable[[], float],
        gauge: Callable[[int], float] | None,
        heaters: int,
    ) -> None:
        self.hw = hardware
        self.tick = tick
        self.gauge = gauge
        self.heaters = heaters

    def readings(self) -> list[float]:
        """Every channel's reading now (datasheet curve, zero taken at start on a Pi)."""
        return [s.value for s in self.hw.read().pressure]

    def drive(
        self, *, pump: float = 0.0, inlet: int | None = None, sealed: int | None = None
    ) -> None:
        """Pump at `pump` into zone `inlet`, zone `sealed`'s exhaust closed; all else safe."""
        orders = Orders(zones=self.hw.zones, heaters=self.heaters)
        orders.pump = pump
        if inlet is not None:
            orders.inlet_open[inlet] = True
        if sealed is not None:
            orders.exhaust_open[sealed] = False
        self.hw.apply(orders)

    def hold_for(self, seconds: float, **drive: Any) -> Iterator[list[float]]:
        """Drive as told for `seconds`, yielding the readings of each tick."""
        end = self.tick() + seconds
        while True:
            self.drive(**drive)
            yield self.readings()
            if self.tick() >= end:
                return

    def vent(self) -> None:
        """Every exhaust open until every channel reads low (or 10 s)."""
        for values in self.hold_for(10.0):
            if max(values) < VENT_BELOW_MMHG:
                break
        self.hw.safe_state()


def span_zone(
    bench: Bench,
    k: int,
    zone: str,
    reference: float,
    *,
    reached: Callable[[], bool] | None = None,
    ask: Callable[[float], float] | None = None,
    counts: bool = False,
) -> Span:
    """Zero, inflate zone `k` until the gauge reads `reference`, hold, and compare.

    `reached` says when a person saw the gauge reach the span point; `ask` asks what it reads
    once held. Without them the bench's own gauge decides (the simulator's).
    """
    bench.vent()
    for _ in bench.hold_for(1.0):
        pass
    zero_values = [v[k] for v in bench.hold_for(1.0)]
    zero = sum(zero_values) / len(zero_values)
    # a channel reading that much is not one to trust further (counts: the person decides)
    cap = math.inf if counts else min(2.5 * reference, 90.0)
    t0 = bench.tick()
    try:
        for values in bench.hold_for(INFLATE_TIMEOUT_S, pump=PUMP_DUTY, inlet=k, sealed=k):
            if values[k] - zero > cap:
                raise CalibrationAborted(
                    f"{zone}: read {values[k] - zero:.0f} mmHg before the reference reached "
                    f"{reference:g}: more than {cap / reference:.1f} times it. Stopped; check "
                    "the divider (10 kΩ from Vout, 20 kΩ to GND) and the sensor model"
                )
            at_span = (
                reached()
                if reached is not None
                else bench.gauge is not None and (bench.gauge(k) >= reference)
            )
            if at_span:
                break
        else:
            raise CalibrationAborted(
                f"{zone}: the reference did not reach {reference:g} mmHg in "
                f"{INFLATE_TIMEOUT_S:.0f} s of pumping (the channel read "
                f"{values[k] - zero:.1f} mmHg): a hose off, a sleeve open, or the gauge on "
                "another zone"
            )
        held = list(bench.hold_for(1.5, sealed=k))  # settle
        held = list(bench.hold_for(1.0, sealed=k))
        reading = sum(v[k] for v in held) / len(held) - zero
        if ask is not None:
            gauge = ask(reference)
        elif bench.gauge is not None:
            gauge = bench.gauge(k)
        else:  # pragma: no cover - the command always gives one or the other
            raise CalibrationAborted("no reference gauge")
    finally:
        bench.vent()
    _ = t0
    return Span(zone=zone, zero_mmhg=zero, reading_mmhg=reading, reference_mmhg=gauge)


def calibrate(
    bench: Bench,
    zones: list[str],
    which: list[str],
    reference: float,
    *,
    sensor: str,
    previous: Calibration,
    say: Callable[[str], None],
    person: tuple[Callable[[], bool], Callable[[float], float]] | None = None,
    counts: bool = False,
    expected_counts: float | None = None,
) -> tuple[Calibration, list[str]]:
    """Calibrate the zones in `which`; return the new calibration and every problem."""
    kept = dict(previous.zones)
    problems: list[str] = []
    for zone in which:
        k = zones.index(zone)
        say(f"{zone}: venting, zeroing, then inflating slowly to {reference:g} mmHg …")
        reached, ask = person if person is not None else (None, None)
        try:
            span = span_zone(bench, k, zone, reference, reached=reached, ask=ask, counts=counts)
        except CalibrationAborted as exc:
            problems.append(str(exc))
            say(f"  {exc}")
            continue
        problem = span.counts_problem(expected_counts) if counts else span.problem(sensor)
        if problem is not None:
            problems.append(problem)
            kept.pop(zone, None)  # an old calibration of a channel now reading wrong is void
            say(f"  {problem}")
            continue
        scale = span.reading_mmhg / span.reference_mmhg if counts else None
        gain = 1.0 if counts else span.reference_mmhg / span.reading_mmhg
        kept[zone] = ChannelCalibration(
            gain=gain,
            zero=round(span.zero_mmhg, 2),
            reading=round(span.reading_mmhg, 2),
            reference_mmhg=round(span.reference_mmhg, 2),
            at=datetime.now(UTC),
            counts_per_mmhg=scale,
        )
        if scale is not None:
            say(
                f"  {zone}: {span.reading_mmhg:.0f} counts above its zero where the reference "
                f"reads {span.reference_mmhg:.1f} mmHg: {scale:.1f} counts per mmHg"
            )
        else:
            say(
                f"  {zone}: reads {span.reading_mmhg:.1f} mmHg where the reference reads "
                f"{span.reference_mmhg:.1f}: {span.error:+.1%} from the {sensor}'s curve, "
                f"gain {gain:.3f}"
            )
    return Calibration(zones=kept), problems


# -- the command ------------------------------------------------------------------------------
def _person_at_the_gauge() -> tuple[Callable[[], bool], Callable[[float], float]]:
    """Enter when the gauge shows the span point; then what it shows, once held."""
    pressed = threading.Event()

    def wait_for_enter() -> None:
        sys.stdin.readline()
        pressed.set()

    def reached() -> bool:
        if not hasattr(reached, "thread"):
            print("  press Enter when the gauge shows the span point", flush=True)
            reached.thread = threading.Thread(target=wait_for_enter, daemon=True)  # type: ignore[attr-defined]
            reached.thread.start()  # type: ignore[attr-defined]
        if pressed.is_set():
            pressed.clear()
            del reached.thread  # type: ignore[attr-defined]
            return True
        return False

    def ask(reference: float) -> float:
        while True:
            text = input(f"  held: what does the gauge read now, in mmHg? [{reference:g}] ").strip()
            try:
                value = float(text) if text else reference
            except ValueError:
                print("  a number, please (mmHg)")
                continue
            if 0 < value <= MAX_REFERENCE_MMHG * 1.5:
                return value
            print(f"  between 0 and {MAX_REFERENCE_MMHG * 1.5:g} mmHg, please")

    return reached, ask


def calibrate_command(
    settings: AgentSettings,
    *,
    zones: list[str],
    reference: float | None,
    raw: bool,
    once: bool,
    fault_specs: list[str],
    seed: int,
) -> int:
    """`legwave calibrate`: 0 when every zone asked for is calibrated, 1 when not, 2 on errors."""
    from bridge.selftest import open_bench
    from device.backends import HardwareUnavailableError
    from device.backends.sim import FaultInjection, FaultSpecError

    names = list(settings.device.zones)
    unknown = [z for z in zones if z not in names]
    if unknown:
        return _fail(f"--zone: unknown zone {unknown[0]!r}; zones are {', '.join(names)}")
    if reference is not None and not 5 <= reference <= MAX_REFERENCE_MMHG:
        return _fail(f"--reference: give 5-{MAX_REFERENCE_MMHG:g} mmHg (a low pressure)")
    if fault_specs and settings.backend != "sim":
        return _fail("--fault: faults are the simulator's only")
    sim = settings.backend == "sim"
    if not sim and not raw and not sys.stdin.isatty():
        return _fail("on real hardware the reference is a person at a gauge: run it in a terminal")
    try:
        faults = [FaultInjection.parse(s, zones=names, default_at_s=0.0) for s in fault_specs]
    except FaultSpecError as exc:
        return _fail(str(exc))
    try:
        lock = claim(settings.state_dir)
    except RuntimeError as exc:
        return _fail(f"{exc}. Stop the agent first: calibration moves air on its own")
    try:
        with open_bench(settings, faults=faults, seed=seed, zero=not raw) as opened:
            bench, raw_reader, sensor = opened
            if raw:
                return _raw_view(bench, raw_reader, names, once=once)
            previous = load_calibration(settings.state_dir)
            hx710b = settings.pi.pressure if sensor == "HX710B board" else None
            calibration, problems = calibrate(
                bench,
                names,
                zones or names,
                reference or 30.0,
                sensor=sensor,
                previous=previous,
                say=print,
                person=None if sim else _person_at_the_gauge(),
                counts=hx710b is not None,
                expected_counts=getattr(hx710b, "counts_per_mmhg", None),
            )
    except HardwareUnavailableError as exc:
        return _fail(str(exc))
    finally:
        lock.close()
    save_calibration(settings.state_dir, calibration)
    missing = calibration.missing(names)
    print(f"kept in {settings.state_dir / 'calibration.json'}")
    if missing:
        print(f"not calibrated: {', '.join(missing)}")
    return 1 if problems else 0


def _raw_view(
    bench: Bench,
    raw_reader: Callable[[], list[tuple[float | None, str]]],
    names: list[str],
    *,
    once: bool,
) -> int:
    try:
        while True:
            raw = raw_reader()
            values = bench.readings()
            line = "  ".join(
                f"{z} {'-' if r is None else f'{r:.4f}' if unit == 'V' else f'{r:.0f}'} {unit} "
                f"({v:.1f} mmHg)"
                for z, (r, unit), v in zip(names, raw, values, strict=True)
            )
            print(line, flush=True)
            if once:
                return 0
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def _fail(message: str) -> int:
    print(f"legwave: error: {message}", file=sys.stderr)
    return 2
