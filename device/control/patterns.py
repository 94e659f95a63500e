"""The five compression patterns (README: Patterns) as clock-driven state machines.

A pattern gives, every tick, a target pressure per zone (None: vent that zone) and its phase.
Set-points are taken from `setpoints()` when a zone starts inflating, so an intensity change
takes effect on the next inflation. The set-point limit (`cap()`) applies at every tick: a posture
change to seated lowers a zone's target at once, and the pattern judges "reached" against the
same capped target the supervisor enforces, so a lowered limit can never stall it in a phase.
"""

from __future__ import annotations

from collections.abc import Callable  # at run time: see device/hal/hardware.py
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from device.settings import Mode

if TYPE_CHECKING:
    from device.settings import DeviceSettings, PatternTimings


class Phase(StrEnum):
    """What the running pattern is doing."""

    INFLATING = "inflating"
    HOLDING = "holding"
    VENTING = "venting"
    RESTING = "resting"


@dataclass(frozen=True, slots=True)
class PatternContext:
    """What every pattern needs: zone count, where set-points come from, and tolerances."""

    zones: int
    setpoints: Callable[[], list[float]]
    tolerance: float
    vent_below: float
    cap: Callable[[], float] = lambda: float("inf")


class Pattern:
    """Base: bookkeeping shared by every pattern."""

    def __init__(self, ctx: PatternContext) -> None:
        zones = ctx.zones
        self.zones = zones
        self.setpoints = ctx.setpoints
        self.cap = ctx.cap
        self.tolerance = ctx.tolerance
        self.vent_below = ctx.vent_below
        self.targets: list[float | None] = [None] * zones
        self.phase = Phase.RESTING
        self.cycles = 0
        self._until = 0.0
        self._vent_first = False

    def start(self, now: float, *, vent_first: bool = False) -> None:
        """Begin the first cycle at `now`.

        Args:
            now: the current time.
            vent_first: vent every zone before the cycle begins (after a resume or a mode
                change): air left from before would otherwise lengthen the first compression.
        """
        self.targets = [None] * self.zones
        self._vent_first = vent_first
        if vent_first:
            self.phase = Phase.VENTING
        else:
            self._begin(now)

    def step(self, now: float, pressures: list[float]) -> list[float | None]:
        """Advance to `now` and return the targets for this tick, none above the limit."""
        if self._vent_first:
            if any(p >= self.vent_below for p in pressures):
                return self.targets
            self._vent_first = False
            self._begin(now)
        cap = self.cap()
        targets = self.targets
        for i, t in enumerate(targets):
            if t is not None and t > cap:
                targets[i] = cap
        return self._advance(now, pressures)

    def _advance(self, now: float, pressures: list[float]) -> list[float | None]:
        raise NotImplementedError

    def _begin(self, now: float) -> None:
        raise NotImplementedError

    def _reached(self, i: int, pressures: list[float]) -> bool:
        target = self.targets[i]
        return target is not None and pressures[i] >= target - self.tolerance

    def _vent_then_rest(self, now: float, pressures: list[float], rest_s: float) -> None:
        """Handle the VENTING and RESTING phases common to the cyclic patterns."""
        if self.phase is Phase.VENTING and all(p < self.vent_below for p in pressures):
            self.cycles += 1
            self.phase = Phase.RESTING
            self._until = now + rest_s
        elif self.phase is Phase.RESTING and now >= self._until:
            self._begin(now)


class Sequential(Pattern):
    """Wave, pulse and squeeze: zones inflate distal → proximal (or together), hold, vent, rest.

    Args:
        stagger_s: delay after the previous zone reaches `start_next_at` of its set-point;
            None starts every zone together (squeeze).
        distal_release: vent zone n−1 as soon as zone n reaches its set-point (pulse).
    """

    def __init__(
        self,
        ctx: PatternContext,
        *,
        stagger_s: float | None,
        start_next_at: float,
        distal_release: bool,
        hold_s: float,
        rest_s: float,
    ) -> None:
        super().__init__(ctx)
        self.stagger_s = stagger_s
        self.start_next_at = start_next_at
        self.distal_release = distal_release
        self.hold_s = hold_s
        self.rest_s = rest_s
        self._started = 0
        self._ready_at: float | None = None
        self._reached_all: list[bool] = [False] * self.zones

    def _begin(self, now: float) -> None:
        self.phase = Phase.INFLATING
        sp = self.setpoints()
        self._reached_all = [False] * self.zones
        if self.stagger_s is None:
            self.targets = list(sp)
            self._started = self.zones
        else:
            self.targets = [sp[0]] + [None] * (self.zones - 1)
            self._started = 1
        self._ready_at = None

    def _advance(self, now: float, pressures: list[float]) -> list[float | None]:
        if self.phase is Phase.INFLATING:
            self._inflate(now, pressures)
        elif self.phase is Phase.HOLDING and now >= self._until:
            self.targets = [None] * self.zones
            self.phase = Phase.VENTING
        else:
            self._vent_then_rest(now, pressures, self.rest_s)
        return self.targets

    def _inflate(self, now: float, pressures: list[float]) -> None:
        n = self.zones
        for i in range(self._started):
            if not self._reached_all[i] and self._reached(i, pressures):
                self._reached_all[i] = True
                if self.distal_release:
                    for j in range(i):  # distal release: everything below the wave lets go
                        self.targets[j] = None
        if self._started < n and self.stagger_s is not None:
            last = self._started - 1
            target = self.targets[last]
            if self._ready_at is None and (
                self._reached_all[last]
                or (target is not None and pressures[last] >= self.start_next_at * target)
            ):
                self._ready_at = now + self.stagger_s
            if self._ready_at is not None and now >= self._ready_at:
                self.targets[self._started] = self.setpoints()[self._started]
                self._started += 1
                self._ready_at = None
        top_up = self._started == n and self._reached_all[n - 1]
        if top_up and (self.distal_release or all(self._reached_all)):
            self.phase = Phase.HOLDING
            self._until = now + self.hold_s


class Knead(Pattern):
    """One zone at a time, `hold_s` each, walking up the leg and back down."""

    def __init__(self, ctx: PatternContext, *, hold_s: float) -> None:
        super().__init__(ctx)
        self.hold_s = hold_s
        n = self.zones
        self._walk = list(range(n)) + list(range(n - 2, 0, -1))
        self._step = 0

    def _begin(self, now: float) -> None:
        self._step = 0
        self._inflate_zone(self._walk[0])

    def _inflate_zone(self, zone: int) -> None:
        self.phase = Phase.INFLATING
        self.targets = [None] * self.zones
        self.targets[zone] = self.setpoints()[zone]

    def _advance(self, now: float, pressures: list[float]) -> list[float | None]:
        zone = self._walk[self._step]
        if self.phase is Phase.INFLATING and self._reached(zone, pressures):
            self.phase = Phase.HOLDING
            self._until = now + self.hold_s
        elif self.phase is Phase.HOLDING and now >= self._until:
            self._step = (self._step + 1) % len(self._walk)
            if self._step == 0:
                self.cycles += 1
            if self._walk[self._step] == zone:  # a single zone: vent before squeezing again
                self.targets = [None] * self.zones
                self.phase = Phase.VENTING
            else:
                self._inflate_zone(self._walk[self._step])
        elif self.phase is Phase.VENTING and all(p < self.vent_below for p in pressures):
            self._inflate_zone(zone)
        return self.targets


class Gentle(Pattern):
    """One short squeeze of the calf zones per period at a low pressure (the bedtime pattern)."""

    def __init__(
        self,
        ctx: PatternContext,
        *,
        squeeze_zones: list[int],
        squeeze_s: float,
        period_s: float,
        max_mmhg: float,
    ) -> None:
        super().__init__(ctx)
        self.squeeze_zones = squeeze_zones
        self.squeeze_s = squeeze_s
        self.period_s = period_s
        self.max_mmhg = max_mmhg
        self._cycle_start = 0.0

    def _begin(self, now: float) -> None:
        self._cycle_start = now
        self.phase = Phase.INFLATING
        sp = self.setpoints()
        self.targets = [None] * self.zones
        # The squeezed zones get the gradient as if they were the whole leg, capped low.
        for rank, zone in enumerate(self.squeeze_zones):
            self.targets[zone] = min(sp[rank], self.max_mmhg)

    def _advance(self, now: float, pressures: list[float]) -> list[float | None]:
        if self.phase is Phase.INFLATING and all(
            self._reached(z, pressures) for z in self.squeeze_zones
        ):
            self.phase = Phase.HOLDING
            self._until = now + self.squeeze_s
        elif self.phase is Phase.HOLDING and now >= self._until:
            self.targets = [None] * self.zones
            self.phase = Phase.VENTING
        elif self.phase is Phase.VENTING and all(p < self.vent_below for p in pressures):
            self.cycles += 1
            self.phase = Phase.RESTING
            self._until = max(self._cycle_start + self.period_s, now)
        elif self.phase is Phase.RESTING and now >= self._until:
            self._begin(now)
        return self.targets


def gentle_zone_indices(device: DeviceSettings) -> list[int]:
    """The zones the gentle pattern squeezes: configured, else every zone named *calf*, else all."""
    names = device.timings.gentle_zones
    if names:
        return [device.zones.index(n) for n in names]
    calf = [i for i, n in enumerate(device.zones) if "calf" in n]
    return calf or list(range(len(device.zones)))


def make_pattern(
    mode: Mode,
    *,
    device: DeviceSettings,
    setpoints: Callable[[], list[float]],
    cap: Callable[[], float] = lambda: float("inf"),
    rest_s: float | None = None,
) -> Pattern:
    """Build the pattern for `mode` with the device's timings.

    Args:
        mode: which pattern.
        device: zones, timings and regulator tolerance.
        setpoints: called when a zone starts inflating.
        cap: the set-point limit now (posture, configuration), applied at every tick.
        rest_s: a preset's rest between cycles instead of the pattern's default.
    """
    t: PatternTimings = device.timings
    ctx = PatternContext(
        zones=len(device.zones),
        setpoints=setpoints,
        cap=cap,
        tolerance=device.regulator.reached_tolerance_mmhg,
        vent_below=device.limits.vent_below_mmhg,
    )
    match mode:
        case Mode.WAVE | Mode.PULSE:
            pulse = mode is Mode.PULSE
            default_rest = t.pulse_rest_s if pulse else t.wave_rest_s
            return Sequential(
                ctx,
                stagger_s=t.stagger_s,
                start_next_at=t.start_next_at,
                distal_release=pulse,
                hold_s=t.pulse_hold_s if pulse else t.wave_hold_s,
                rest_s=default_rest if rest_s is None else rest_s,
            )
        case Mode.SQUEEZE:
            return Sequential(
                ctx,
                stagger_s=None,
                start_next_at=t.start_next_at,
                distal_release=False,
                hold_s=t.squeeze_hold_s,
                rest_s=t.squeeze_rest_s if rest_s is None else rest_s,
            )
        case Mode.KNEAD:
            return Knead(ctx, hold_s=t.knead_hold_s)
        case Mode.GENTLE:
            return Gentle(
                ctx,
                squeeze_zones=gentle_zone_indices(device),
                squeeze_s=t.gentle_squeeze_s,
                period_s=t.gentle_period_s,
                max_mmhg=t.gentle_max_mmhg,
            )
