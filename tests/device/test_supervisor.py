"""Each safety rule (README, docs/device.md), straight into the supervisor: fires when it must."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from device.control.faults import FaultCode, Priority
from device.control.supervisor import Context, SafetySupervisor, Trip
from device.hal import Orders, Readings, Sample
from device.settings import Limits

PERIOD = 0.02
N = 4


@dataclass
class Feed:
    """Feeds the supervisor one tick at a time with synthetic readings and proposed orders."""

    sup: SafetySupervisor
    t: float = 0.0
    flicker: bool = True  # a live sensor's last digits move; off to feed a frozen one
    ticks: int = 0

    @classmethod
    def new(cls, limits: Limits | None = None) -> Feed:
        return cls(SafetySupervisor(zones=N, heaters=2, limits=limits or Limits()))

    def tick(
        self,
        pressures: list[float] | float = 0.0,
        *,
        targets: list[float | None] | float | None = None,
        temps: float = 33.0,
        temp_at: float | None = None,
        at: float | None = None,
        session: str | None = "s1",
        running: bool = True,
        heat_sp: float | None = None,
        late: bool = False,
        pump: float = 0.0,
        inlets: tuple[int, ...] = (),
        sealed: tuple[int, ...] = (),
        heater: bool = False,
    ) -> tuple[list[Trip], Orders]:
        self.t += PERIOD
        self.ticks += 1
        ps = pressures if isinstance(pressures, list) else [pressures] * N
        if self.flicker:
            ps = [p + 0.01 * (self.ticks % 2) for p in ps]
        tg = targets if isinstance(targets, list) else [targets] * N
        stamp = self.t if at is None else at
        readings = Readings(
            pressure=[Sample(p, stamp) for p in ps],
            temperature=[Sample(temps, self.t if temp_at is None else temp_at)] * 2,
        )
        orders = Orders(zones=N, heaters=2, pump=pump, heater_supply=heater)
        for i in inlets:
            orders.inlet_open[i] = True
            orders.exhaust_open[i] = False
        for i in sealed:
            orders.exhaust_open[i] = False
        if heater:
            orders.heater_on[:] = [True, True]
        ctx = Context(
            session=session, running=running, targets=tg, heat_setpoint=heat_sp, late=late
        )
        return self.sup.check(self.t, readings, ctx, orders), orders

    def run(self, seconds: float, **kw: object) -> tuple[list[Trip], Orders]:
        trips: list[Trip] = []
        orders = Orders(zones=N)
        for _ in range(round(seconds / PERIOD)):
            new, orders = self.tick(**kw)  # type: ignore[arg-type]
            trips += new
        return trips, orders


def frozen(feed: Feed) -> Feed:
    """Feed values that never move, as a frozen sensor or a stuck bus gives them."""
    feed.flicker = False
    return feed


def wobble(base: float) -> Callable[[int], float]:
    return lambda k: base + (0.1 if k % 2 else 0.0)


def climb(base: float, per_s: float) -> Callable[[int], float]:
    """A reading that rises `per_s` mmHg a second, with a live sensor's flicker."""
    return lambda k: base + per_s * k * PERIOD + (0.1 if k % 2 else 0.0)


def run_pattern(
    feed: Feed, seconds: float, value: Callable[[int], float | list[float]], **kw: object
) -> list[Trip]:
    trips: list[Trip] = []
    for k in range(round(seconds / PERIOD)):
        new, _ = feed.tick(value(k), **kw)  # type: ignore[arg-type]
        trips += new
    return trips


Scenario = Callable[[Feed], list[Trip]]


def zone(i: int, p: float, rest: float = 0.0) -> list[float]:
    return [p if j == i else rest for j in range(N)]


SCENARIOS: dict[str, tuple[FaultCode | None, Scenario]] = {
    "hard_limit: raw reading above 120": (
        FaultCode.HARD_LIMIT,
        lambda f: f.tick(zone(2, 121.0), targets=80.0)[0],
    ),
    "overpressure: set-point + 15": (
        FaultCode.OVERPRESSURE,
        lambda f: f.run(0.1, pressures=zone(1, 55.5), targets=40.0)[0],
    ),
    "no overpressure at set-point + 14": (
        None,
        lambda f: f.run(1.0, pressures=zone(1, 54.0), targets=40.0)[0],
    ),
    "overpressure: absolute 100 even without a session": (
        FaultCode.OVERPRESSURE,
        lambda f: f.run(0.1, pressures=zone(0, 101.0), session=None, running=False)[0],
    ),
    "a single wild sample is filtered (median of 3)": (
        None,
        lambda f: (
            f.tick(zone(1, 40.0), targets=40.0)[0]
            + f.tick(zone(1, 62.0), targets=40.0)[0]
            + f.run(1.0, pressures=zone(1, 40.0), targets=40.0)[0]
        ),
    ),
    "vent_failure: still at 20 mmHg 5 s after the vent order": (
        FaultCode.VENT_FAILURE,
        lambda f: f.run(5.2, pressures=zone(0, 20.0), targets=None)[0],
    ),
    "venting within 5 s is fine": (
        None,
        lambda f: run_pattern(f, 8.0, lambda k: max(20.0 - k * 0.1, 0.0), targets=None),
    ),
    "overtemp: sensor above 43 °C": (
        FaultCode.OVERTEMP,
        lambda f: f.tick(0.0, temps=43.2)[0],
    ),
    "overtemp: set-point + 2 °C for 30 s": (
        FaultCode.OVERTEMP,
        lambda f: f.run(30.2, temps=42.5, heat_sp=40.0)[0],
    ),
    "set-point + 2 °C for 29 s is not yet overtemp": (
        None,
        lambda f: f.run(29.0, temps=42.5, heat_sp=40.0)[0],
    ),
    "sensor_fault: reading out of range": (
        FaultCode.SENSOR_FAULT,
        lambda f: f.tick(zone(3, -15.0))[0],
    ),
    "sensor_fault: NaN": (
        FaultCode.SENSOR_FAULT,
        lambda f: f.tick(zone(3, math.nan))[0],
    ),
    "sensor_fault: jump over 30 mmHg between samples": (
        FaultCode.SENSOR_FAULT,
        lambda f: f.tick(zone(2, 10.0), targets=40.0)[0] + f.tick(zone(2, 41.0), targets=40.0)[0],
    ),
    "sensor_fault: stale for 5 ticks": (
        FaultCode.SENSOR_FAULT,
        lambda f: f.run(0.12, pressures=0.0, at=0.0)[0],
    ),
    "a sample repeated for 4 ticks is not stale": (
        None,
        lambda f: f.run(0.08, pressures=0.0, at=0.0)[0] + f.run(0.2, pressures=0.0)[0],
    ),
    "sensor_fault: stuck while pumping for 5 s": (
        FaultCode.SENSOR_FAULT,
        lambda f: frozen(f).run(5.2, pressures=zone(0, 12.0), targets=40.0, pump=0.8, inlets=(0,))[
            0
        ],
    ),
    "sensor_fault: the very same value for 30 s, pump or not": (
        FaultCode.SENSOR_FAULT,
        lambda f: frozen(f).run(30.2, pressures=0.0, targets=None, session=None)[0],
    ),
    "a live sensor at rest flickers: not frozen": (
        None,
        lambda f: f.run(35.0, pressures=0.0, targets=None, session=None)[0],
    ),
    "a steady reading of a sealed zone (pump off) is not stuck": (
        None,
        lambda f: f.run(6.0, pressures=zone(0, 12.0), targets=12.0, sealed=(0,))[0],
    ),
    "sensor_fault: temperature sensor silent for 5 s": (
        FaultCode.SENSOR_FAULT,
        lambda f: f.run(5.2, temp_at=0.0)[0],
    ),
    "loop_overrun: 5 late ticks in a row": (
        FaultCode.LOOP_OVERRUN,
        lambda f: f.run(0.1, late=True)[0],
    ),
    "4 late ticks then an on-time one is no overrun": (
        None,
        lambda f: f.run(0.08, late=True)[0] + f.tick()[0] + f.run(0.08, late=True)[0],
    ),
    "hold_too_long: above 15 mmHg for 60 s": (
        FaultCode.HOLD_TOO_LONG,
        lambda f: f.run(60.2, pressures=zone(0, 40.0), targets=40.0, sealed=(0,))[0],
    ),
    "leak: sealed zone losing 4 mmHg/s": (
        FaultCode.LEAK,
        lambda f: run_pattern(
            f, 3.0, lambda k: zone(0, 40.0 - 4.0 * k * PERIOD), targets=40.0, sealed=(0,)
        ),
    ),
    "a sealed zone losing 1 mmHg/s is no leak": (
        None,
        lambda f: run_pattern(
            f, 3.0, lambda k: zone(0, 40.0 - 1.0 * k * PERIOD), targets=40.0, sealed=(0,)
        ),
    ),
    "inflate_timeout: 30 s of pump time below 90 %": (
        FaultCode.INFLATE_TIMEOUT,
        lambda f: run_pattern(
            f, 30.2, lambda k: zone(0, climb(10.0, 0.6)(k)), targets=40.0, pump=0.8, inlets=(0,)
        ),
    ),
    "two zones sharing the pump get 15 s each in 30 s: no timeout yet": (
        None,
        lambda f: run_pattern(
            f,
            31.0,
            lambda k: [climb(10.0, 0.3)(k)] * 2 + [0.0, 0.0],
            targets=40.0,
            pump=0.8,
            inlets=(0, 1),
        ),
    ),
    "no rise: 5 s of pump time without 2 mmHg (a dead sensor over a filling zone)": (
        FaultCode.INFLATE_TIMEOUT,
        lambda f: run_pattern(
            f, 5.2, lambda k: zone(0, wobble(0.0)(k)), targets=40.0, pump=1.0, inlets=(0,)
        ),
    ),
    "at 80 % pump 5 s are 4 s of pump time: no verdict yet": (
        None,
        lambda f: run_pattern(
            f, 5.5, lambda k: zone(0, wobble(0.0)(k)), targets=40.0, pump=0.8, inlets=(0,)
        ),
    ),
    "two zones filling together: 9 s are 4.5 s each": (
        None,
        lambda f: run_pattern(
            f,
            9.0,
            lambda k: [wobble(0.0)(k)] * 2 + [0.0, 0.0],
            targets=40.0,
            pump=1.0,
            inlets=(0, 1),
        ),
    ),
    "a slow but steady rise is no dead sensor": (
        None,
        lambda f: run_pattern(
            f, 25.0, lambda k: zone(0, climb(0.0, 0.45)(k)), targets=40.0, pump=1.0, inlets=(0,)
        ),
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rule(name: str) -> None:
    expected, scenario = SCENARIOS[name]
    feed = Feed.new()
    trips = scenario(feed)
    codes = [t.code for t in trips]
    if expected is None:
        assert codes == [], name
        assert feed.sup.latched is None
        return
    assert codes[:1] == [expected], (name, trips)
    assert trips[0].message
    if expected.priority is Priority.HIGH:
        assert feed.sup.latched is expected
        # latched: every later tick is forced safe, whatever is proposed
        _, orders = feed.tick(0.0, targets=40.0, pump=1.0, inlets=(0, 1), heater=True)
        assert orders.pump == 0.0 and not orders.heater_supply and orders.vibration == 0.0
        assert all(orders.exhaust_open)
    else:
        assert feed.sup.latched is None


def test_high_fault_turns_the_very_same_tick_safe() -> None:
    feed = Feed.new()
    trips, orders = feed.tick(zone(1, 125.0), targets=80.0, pump=1.0, inlets=(1,), heater=True)
    assert [t.code for t in trips] == [FaultCode.HARD_LIMIT]
    assert orders.is_safe()


def test_vent_failure_vents_through_the_manifold() -> None:
    feed = Feed.new()
    feed.run(5.2, pressures=zone(0, 20.0), targets=None)
    _, orders = feed.tick(zone(0, 20.0))
    assert orders.pump == 0.0 and all(orders.exhaust_open)
    assert all(orders.inlet_open), "the stuck zone must reach the other zones' exhausts"


def test_hold_too_long_vents_only_that_zone_and_the_session_goes_on() -> None:
    feed = Feed.new()
    feed.run(60.2, pressures=zone(0, 40.0), targets=40.0, sealed=(0,))
    _, orders = feed.tick(
        zone(0, 40.0, rest=10.0), targets=40.0, pump=0.8, inlets=(1,), sealed=(0,)
    )
    assert orders.exhaust_open[0] and not orders.inlet_open[0]
    assert orders.inlet_open[1] and orders.pump == 0.8
    # released once the zone is vented
    trips = run_pattern(feed, 1.2, lambda k: zone(0, max(40.0 - k, 2.0)), targets=40.0, sealed=(0,))
    assert trips == []
    _, orders = feed.tick(zone(0, 2.0), targets=40.0, sealed=(0,))
    assert not orders.exhaust_open[0]


def test_a_latched_fault_stays_until_cleared_and_re_trips_if_still_true() -> None:
    feed = Feed.new()
    feed.tick(0.0, temps=44.0)
    trips, orders = feed.run(2.0, temps=44.0, heater=True)
    assert trips == []  # latched once, reported once
    assert not orders.heater_supply
    assert feed.sup.clear() is FaultCode.OVERTEMP
    trips, _ = feed.tick(0.0, temps=44.0)
    assert [t.code for t in trips] == [FaultCode.OVERTEMP]
    feed.sup.clear()
    trips, orders = feed.tick(0.0, temps=36.0, heater=True)
    assert trips == [] and orders.heater_supply


@pytest.mark.untraced
def test_heat_never_runs_past_30_min_in_a_session() -> None:
    feed = Feed.new()
    _, orders = feed.run(29.9 * 60, temps=40.0, heater=True, heat_sp=40.0)
    assert orders.heater_supply
    _, orders = feed.run(0.2 * 60, temps=40.0, heater=True, heat_sp=40.0)
    assert not orders.heater_supply and not any(orders.heater_on)
    # a new session has its own allowance
    _, orders = feed.run(1.0, temps=40.0, heater=True, heat_sp=40.0, session="s2")
    assert orders.heater_supply


def test_heat_never_runs_while_not_running() -> None:
    feed = Feed.new()
    _, orders = feed.tick(0.0, heater=True, running=False)
    assert not orders.heater_supply and not any(orders.heater_on)


def test_targets_are_capped_at_the_set_point_limit() -> None:
    sup = SafetySupervisor(zones=3, heaters=0, limits=Limits(max_setpoint_mmhg=60))
    targets: list[float | None] = [95.0, 60.0, None]
    sup.cap_targets(targets, cap=60.0)
    assert targets == [60.0, 60.0, None]


def test_no_session_runs_longer_than_the_hard_limit() -> None:
    feed = Feed.new(Limits(max_session_min=5))
    # the pump on with every inlet shut at a gentle pressure: below every other rule, so only
    # the session limit can act
    kw: dict[str, object] = {"pump": 0.8, "inlets": (), "targets": 11.0}
    assert run_pattern(feed, 4.9 * 60, lambda k: zone(0, wobble(10.0)(k)), **kw) == []
    _, orders = feed.tick(zone(0, 10.05), **kw)  # type: ignore[arg-type]
    assert orders.pump == 0.8
    assert run_pattern(feed, 0.2 * 60, lambda k: zone(0, wobble(10.0)(k)), **kw) == []
    _, orders = feed.tick(zone(0, 10.05), **kw)  # type: ignore[arg-type]
    assert orders.is_safe()


def test_a_sensor_fault_vents_through_the_manifold_too() -> None:
    """A zone that cannot be measured may hold air whatever it reads (a stuck exhaust behind a
    frozen sensor): its inlet opens too, so it vents through the other exhausts; pump off."""
    feed = Feed.new()
    frozen(feed).run(30.2, pressures=0.0, targets=None, session=None)
    assert feed.sup.latched is FaultCode.SENSOR_FAULT
    _, orders = feed.tick(0.0, targets=40.0, pump=1.0, inlets=(0,), heater=True)
    assert orders.pump == 0.0 and not orders.heater_supply
    assert all(orders.inlet_open) and all(orders.exhaust_open)
    feed.sup.clear()
    feed.tick(0.0, targets=None, session=None)  # still frozen: it trips again at once
    assert feed.sup.latched is FaultCode.SENSOR_FAULT
    feed.sup.clear()
    feed.flicker = True  # the sensor lives again
    _, orders = feed.tick(0.0, targets=None, session=None)
    assert feed.sup.latched is None
    assert not any(orders.inlet_open)  # cleared: back to normal venting
