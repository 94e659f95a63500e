"""The safety supervisor: every rule (README, docs/device.md), each tick, before an order acts.

It knows nothing of patterns or MQTT. Each tick it gets the raw readings, the per-zone targets,
which session is active and whether it is running, and the orders the control logic proposes.
It may rewrite those orders: a HIGH fault latches the safe state (vent all, pump, heat and
vibration off) until `clear()`; MEDIUM faults vent one zone or are only reported. Rules that need
to know what the hardware is doing use the orders it let through on the previous tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from device.control.faults import FaultCode, Priority

if TYPE_CHECKING:
    from device.hal import Orders, Readings
    from device.settings import Limits

_SEAL_SETTLE_S = 0.1  # valves and pressure settle after both valves of a zone close
_LEAK_WINDOW_S = 2.0  # sealed time over which a leak rate is judged


@dataclass(frozen=True, slots=True)
class Trip:
    """A rule that fired this tick."""

    code: FaultCode
    message: str
    zone: int | None = None

    @property
    def priority(self) -> Priority:
        """The fault's priority."""
        return self.code.priority


@dataclass(slots=True)
class Context:
    """What the supervisor is told each tick besides readings and orders.

    Args:
        session: id of the active session (fit check, running or paused), else None.
        running: the session is running (heat may be on).
        targets: per-zone target pressure, None where the zone is told to vent.
        heat_setpoint: skin-side set-point in °C while heat is wanted, else None.
        late: this tick started more than one period after its deadline.
    """

    session: str | None
    running: bool
    targets: list[float | None]
    heat_setpoint: float | None = None
    late: bool = False


class _Fit:
    """Running least-squares sums for a pressure slope over one sealed interval."""

    __slots__ = ("n", "sp", "st", "stp", "stt", "t0")

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.n = 0
        self.st = self.sp = self.stt = self.stp = 0.0

    def add(self, t: float, p: float) -> None:
        t -= self.t0
        self.n += 1
        self.st += t
        self.sp += p
        self.stt += t * t
        self.stp += t * p

    def span(self) -> float:
        return 0.0 if self.n < 2 else self.st / self.n * 2.0  # ≈ duration for even sampling

    def slope(self) -> float:
        n = self.n
        denom = n * self.stt - self.st * self.st
        return 0.0 if n < 3 or denom <= 0 else (n * self.stp - self.st * self.sp) / denom


class _ZoneWatch:
    """Per-zone memory of the supervisor."""

    __slots__ = (
        "fit",
        "forced_vent",
        "frozen_since",
        "frozen_value",
        "held_since",
        "hold_reported",
        "last_at",
        "last_target",
        "leak_drop",
        "leak_reported",
        "leak_time",
        "pump_s",
        "rise_from",
        "rise_s",
        "sealed_since",
        "stale_ticks",
        "stuck_since",
        "stuck_value",
        "values",
        "vent_since",
    )

    def __init__(self) -> None:
        self.values: list[float] = []
        self.last_at: float | None = None
        self.stale_ticks = 0
        self.stuck_since: float | None = None
        self.stuck_value = math.nan
        self.frozen_since = 0.0
        self.frozen_value = math.nan
        self.last_target: float | None = None
        self.vent_since: float | None = None
        self.held_since: float | None = None
        self.hold_reported = False
        self.forced_vent = False
        self.pump_s = 0.0
        self.rise_from: float | None = None  # the reading a fill is measured from
        self.rise_s = 0.0  # this zone's share of the pump time since then
        self.sealed_since: float | None = None
        self.fit: _Fit | None = None
        self.leak_time = 0.0
        self.leak_drop = 0.0
        self.leak_reported = False

    def new_session(self) -> None:
        self.last_target = None
        self.pump_s = 0.0
        self.leak_reported = False
        self.leak_time = self.leak_drop = 0.0


class SafetySupervisor:
    """Checks every safety rule and keeps the orders safe.

    Args:
        zones: number of zones.
        heaters: number of heating pads.
        limits: the safety limits.
    """

    def __init__(self, *, zones: int, heaters: int, limits: Limits) -> None:
        self.limits = limits
        self.zones = zones
        self.heaters = heaters
        self.latched: FaultCode | None = None
        self._cross_vent = False
        self._watch = [_ZoneWatch() for _ in range(zones)]
        self._over_sp_since: list[float | None] = [None] * heaters
        self._late_ticks = 0
        self._session: str | None = None
        self._session_started = 0.0
        self._heat_s = 0.0
        self._last_now: float | None = None
        self._applied_pump = 0.0
        self._applied_inlet = [False] * zones
        self._applied_exhaust = [True] * zones
        self._applied_supply = False

    # -- public ---------------------------------------------------------------------------
    def clear(self) -> FaultCode | None:
        """Clear a latched fault; returns the code that was latched. Rules re-trip if still true."""
        code, self.latched = self.latched, None
        self._cross_vent = False
        self._late_ticks = 0
        for w in self._watch:
            w.vent_since = None
        return code

    def cap_targets(self, targets: list[float | None], cap: float) -> None:
        """Clamp every target to `cap` (the set-point limit), whatever asked for more."""
        for i, t in enumerate(targets):
            if t is not None and t > cap:
                targets[i] = cap

    def check(self, now: float, readings: Readings, ctx: Context, orders: Orders) -> list[Trip]:
        """Evaluate every rule; rewrite `orders` to be safe; return the faults raised now."""
        dt = 0.0 if self._last_now is None else max(now - self._last_now, 0.0)
        self._last_now = now
        lim = self.limits
        if ctx.session != self._session:
            self._session = ctx.session
            self._session_started = now
            self._heat_s = 0.0
            for w in self._watch:
                w.new_session()
        trips: list[Trip] = []
        filtered = self._check_pressures(now, dt, readings, ctx, trips)
        self._check_temperatures(now, readings, ctx, trips)
        self._late_ticks = self._late_ticks + 1 if ctx.late else 0
        if self._late_ticks >= lim.overrun_ticks:
            trips.append(
                Trip(FaultCode.LOOP_OVERRUN, f"{self._late_ticks} control ticks in a row were late")
            )
        # A latched fault already holds the safe state: nothing new to report until cleared.
        # Otherwise the first HIGH fault latches; MEDIUM faults are reported once per code.
        reported: list[Trip] = []
        if self.latched is None:
            high = next((t for t in trips if t.priority is Priority.HIGH), None)
            if high is not None:
                self.latched = high.code
                reported = [high]
                if high.code is FaultCode.SENSOR_FAULT:
                    # A zone we cannot measure may hold air whatever it reads: vent it by every
                    # way there is, through the manifold as well (the pump is off).
                    self._cross_vent = True
            else:
                seen: set[FaultCode] = set()
                for t in trips:
                    if t.code not in seen:
                        seen.add(t.code)
                        reported.append(t)
        self._enforce(now, dt, filtered, ctx, orders)
        return reported

    # -- rules ----------------------------------------------------------------------------
    def _check_pressures(
        self, now: float, dt: float, readings: Readings, ctx: Context, trips: list[Trip]
    ) -> list[float]:
        filtered: list[float] = []
        for i, sample in enumerate(readings.pressure):
            w = self._watch[i]
            self._check_sensor(now, i, w, sample.value, sample.at, trips)
            values = w.values
            values.append(sample.value if math.isfinite(sample.value) else math.inf)
            if len(values) > 5:
                del values[0]
            last3 = sorted(values[-3:])
            p = last3[
                (len(last3) - 1) // 2
            ]  # median of 3 (lower of 2): one wild sample is no trend
            filtered.append(p)
            target = ctx.targets[i]
            self._check_overpressure(i, w, p, target, ctx.session is not None, trips)
            self._check_vent(now, i, w, p, target, trips)
            self._check_hold(now, i, w, p, trips)
            self._check_inflate(dt, i, w, p, target, trips)
            self._check_leak(now, i, w, target, trips)
        return filtered

    def _check_sensor(
        self, now: float, i: int, w: _ZoneWatch, v: float, at: float, trips: list[Trip]
    ) -> None:
        """hard_limit on the raw value first; then range, jump, staleness and a stuck value."""
        lim = self.limits
        if v > lim.hard_limit_mmhg:
            trips.append(Trip(FaultCode.HARD_LIMIT, f"zone {i} reads {v:.1f} mmHg", i))
        elif not lim.sensor_min_mmhg <= v <= lim.sensor_max_mmhg:
            trips.append(Trip(FaultCode.SENSOR_FAULT, f"zone {i} reads {v} (out of range)", i))
        if w.values and abs(v - w.values[-1]) > lim.sensor_jump_mmhg:
            message = f"zone {i} jumped {w.values[-1]:.1f} → {v:.1f} mmHg between samples"
            trips.append(Trip(FaultCode.SENSOR_FAULT, message, i))
        if w.last_at is not None and at <= w.last_at:
            w.stale_ticks += 1
            if w.stale_ticks >= lim.sensor_stale_ticks:
                message = f"zone {i}: no new sample for {w.stale_ticks} ticks"
                trips.append(Trip(FaultCode.SENSOR_FAULT, message, i))
        else:
            w.stale_ticks = 0
        w.last_at = at
        # A live sensor always flickers in its last digits; one that repeats the very same value
        # for long is frozen, whatever the pump does (caught while pumping sooner, below).
        if v != w.frozen_value:
            w.frozen_since, w.frozen_value = now, v
        elif now - w.frozen_since > lim.sensor_frozen_s:
            message = f"zone {i} has read exactly {v:.2f} mmHg for {now - w.frozen_since:.0f} s"
            trips.append(Trip(FaultCode.SENSOR_FAULT, message, i))
        if self._applied_pump > 0.0 and self._applied_inlet[i]:
            if w.stuck_since is None or v != w.stuck_value:
                w.stuck_since, w.stuck_value = now, v
            elif now - w.stuck_since > lim.sensor_stuck_s:
                message = f"zone {i} stuck at {v:.1f} mmHg while pumping"
                trips.append(Trip(FaultCode.SENSOR_FAULT, message, i))
        else:
            w.stuck_since = None

    def _check_overpressure(
        self,
        i: int,
        w: _ZoneWatch,
        p: float,
        target: float | None,
        session: bool,
        trips: list[Trip],
    ) -> None:
        """Above the zone's last set-point + margin during a session, or the absolute cap."""
        lim = self.limits
        if target is not None and session:
            w.last_target = target
        limit = lim.overpressure_abs_mmhg
        if session and w.last_target is not None:
            limit = min(limit, w.last_target + lim.overpressure_margin_mmhg)
        if p > limit:
            message = f"zone {i} at {p:.1f} mmHg, limit {limit:.0f}"
            trips.append(Trip(FaultCode.OVERPRESSURE, message, i))

    def _check_vent(
        self, now: float, i: int, w: _ZoneWatch, p: float, target: float | None, trips: list[Trip]
    ) -> None:
        """Told to vent, exhaust open, and still not below the vent threshold in time."""
        lim = self.limits
        venting = (target is None or self.latched is not None) and self._applied_exhaust[i]
        if not venting:
            w.vent_since = None
        elif w.vent_since is None:
            w.vent_since = now
        elif now - w.vent_since >= lim.vent_timeout_s and p >= lim.vent_below_mmhg:
            self._cross_vent = True
            message = f"zone {i} at {p:.1f} mmHg {lim.vent_timeout_s:.0f} s after venting began"
            trips.append(Trip(FaultCode.VENT_FAILURE, message, i))

    def _check_hold(self, now: float, i: int, w: _ZoneWatch, p: float, trips: list[Trip]) -> None:
        """Above 15 mmHg for too long without a break: vent that zone (MEDIUM)."""
        lim = self.limits
        if p > lim.hold_above_mmhg:
            if w.held_since is None:
                w.held_since = now
            elif now - w.held_since > lim.hold_max_s and not w.hold_reported:
                w.hold_reported = w.forced_vent = True
                message = f"zone {i} over {lim.hold_above_mmhg:.0f} mmHg for {lim.hold_max_s:.0f} s"
                trips.append(Trip(FaultCode.HOLD_TOO_LONG, message, i))
        else:
            w.held_since = None
            w.hold_reported = False
        if w.forced_vent and p < lim.vent_below_mmhg:
            w.forced_vent = False

    def _check_inflate(
        self, dt: float, i: int, w: _ZoneWatch, p: float, target: float | None, trips: list[Trip]
    ) -> None:
        """Filling that does not get there (MEDIUM): no rise at all, or not 90 % in time.

        A zone whose reading does not rise while the pump fills it has no sleeve on, a hose off
        or a dead sensor, and it cannot be told which: a dead sensor reads nothing while the
        zone goes on filling (the simulator's zone passes 120 mmHg in about 12 s of full pump).
        So a fill must raise the reading by `no_rise_mmhg` within `no_rise_s` of its pump time.
        """
        lim = self.limits
        filling = self._applied_pump > 0.0 and self._applied_inlet[i]
        # Zones filling together share the pump: each is charged its share of the time.
        share = dt * self._applied_pump / (sum(self._applied_inlet) or 1) if filling else 0.0
        if not filling:
            w.rise_from, w.rise_s = None, 0.0
        elif w.rise_from is None or p - w.rise_from >= lim.no_rise_mmhg:
            w.rise_from, w.rise_s = p, 0.0  # rising: measure again from here
        else:
            w.rise_s += share
            if w.rise_s > lim.no_rise_s:
                message = (
                    f"zone {i} rose {max(p - w.rise_from, 0.0):.1f} mmHg in "
                    f"{lim.no_rise_s:.0f} s of pumping: a sleeve or a hose off, the pump "
                    "stalled, or the zone's sensor dead"
                )
                w.rise_from, w.rise_s = None, 0.0
                trips.append(Trip(FaultCode.INFLATE_TIMEOUT, message, i))
                return
        if target is None or p >= 0.9 * target:
            w.pump_s = 0.0
        elif filling:
            w.pump_s += dt / (sum(self._applied_inlet) or 1)
            if w.pump_s > lim.inflate_timeout_s:
                w.pump_s = 0.0
                message = (
                    f"zone {i} not at 90 % of {target:.0f} mmHg after "
                    f"{lim.inflate_timeout_s:.0f} s of pumping"
                )
                trips.append(Trip(FaultCode.INFLATE_TIMEOUT, message, i))

    def _check_leak(
        self, now: float, i: int, w: _ZoneWatch, target: float | None, trips: list[Trip]
    ) -> None:
        """Both valves closed and the pressure falling faster than the leak rate (report only)."""
        sealed = target is not None and not self._applied_inlet[i] and not self._applied_exhaust[i]
        if not sealed:
            self._close_interval(w)
            w.sealed_since = None
            if target is None:
                w.leak_time = w.leak_drop = 0.0
            return
        if w.sealed_since is None:
            w.sealed_since = now
        if now - w.sealed_since < _SEAL_SETTLE_S:
            return
        if w.fit is None:
            w.fit = _Fit(now)
        w.fit.add(now, w.values[-1])
        if w.fit.span() >= _LEAK_WINDOW_S:
            self._close_interval(w)
        if w.leak_time >= _LEAK_WINDOW_S:
            rate = w.leak_drop / w.leak_time
            w.leak_time = w.leak_drop = 0.0
            if rate > self.limits.leak_rate_mmhg_s and not w.leak_reported:
                w.leak_reported = True
                trips.append(
                    Trip(FaultCode.LEAK, f"zone {i} loses {rate:.1f} mmHg/s with valves closed", i)
                )

    @staticmethod
    def _close_interval(w: _ZoneWatch) -> None:
        fit, w.fit = w.fit, None
        if fit is not None and fit.n >= 10:
            span = fit.span()
            w.leak_time += span
            w.leak_drop += -fit.slope() * span

    def _check_temperatures(
        self, now: float, readings: Readings, ctx: Context, trips: list[Trip]
    ) -> None:
        lim = self.limits
        lo, hi = lim.temperature_range_c
        for i, sample in enumerate(readings.temperature):
            v = sample.value
            if not (lo <= v <= hi):
                trips.append(Trip(FaultCode.SENSOR_FAULT, f"heater {i} sensor reads {v} °C"))
                continue
            if now - sample.at > lim.temperature_stale_s:
                trips.append(
                    Trip(
                        FaultCode.SENSOR_FAULT,
                        f"heater {i} sensor: no sample for {now - sample.at:.1f} s",
                    )
                )
            if v > lim.heater_trip_c:
                trips.append(Trip(FaultCode.OVERTEMP, f"heater {i} at {v:.1f} °C"))
            sp = ctx.heat_setpoint
            if sp is not None and v > sp + lim.heater_over_setpoint_c:
                since = self._over_sp_since[i]
                if since is None:
                    self._over_sp_since[i] = now
                elif now - since >= lim.heater_over_setpoint_s:
                    over, for_s = lim.heater_over_setpoint_c, lim.heater_over_setpoint_s
                    message = (
                        f"heater {i} at {v:.1f} °C, over {sp:.0f} + {over:.0f} °C for {for_s:.0f} s"
                    )
                    trips.append(Trip(FaultCode.OVERTEMP, message))
            else:
                self._over_sp_since[i] = None

    # -- enforcement ----------------------------------------------------------------------
    def _enforce(
        self, now: float, dt: float, filtered: list[float], ctx: Context, orders: Orders
    ) -> None:
        lim = self.limits
        if self._applied_supply:
            self._heat_s += dt
        if not ctx.running or self._heat_s >= lim.heat_max_min * 60.0:
            orders.heater_supply = False
            for h in range(orders.heaters):
                orders.heater_on[h] = False
        for i, w in enumerate(self._watch):
            if w.forced_vent:
                orders.inlet_open[i] = False
                orders.exhaust_open[i] = True
        over_limit = (
            ctx.session is not None and now - self._session_started > lim.max_session_min * 60.0
        )
        if self.latched is not None or over_limit:
            orders.make_safe()
            if self._cross_vent and self.latched is not None:
                # A zone whose exhaust failed vents through the manifold and the other exhausts.
                for i in range(orders.zones):
                    orders.inlet_open[i] = True
        self._applied_pump = orders.pump
        self._applied_supply = orders.heater_supply
        self._applied_inlet[:] = orders.inlet_open
        self._applied_exhaust[:] = orders.exhaust_open
