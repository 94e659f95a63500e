from __future__ import annotations

from typing import Any

import pytest

from device.backends.sim import (
    SYNC_RESOLUTION_S,
    FaultInjection,
    FaultSpecError,
    SimFault,
    SimulatedMassager,
)
from device.backends.sim.config import SimConfig
from device.backends.sim.physics import Physics
from device.hal import Orders
from device.runner import VirtualClock

ZONES = ["foot", "ankle", "calf", "upper_calf"]


def _fill_time(zone: int, to_mmhg: float) -> float:
    p = Physics(zones=4, heaters=0, config=SimConfig())
    z = p.zones[zone]
    z.inlet_open, z.exhaust_open, p.pump_duty = True, False, 1.0
    t = 0.0
    while z.pressure < to_mmhg:
        t += 0.01
        p.advance_to(t)
        assert t < 60, "never filled"
    return t


def test_calf_zone_fills_to_80_in_about_13_s() -> None:
    assert 10.0 <= _fill_time(2, 80.0) <= 16.0
    # a foot zone holds less air than the upper calf
    assert _fill_time(0, 80.0) < _fill_time(3, 80.0)


def test_pump_flow_falls_with_back_pressure() -> None:
    # equal pressure steps take longer at high pressure than in the stiff middle range
    low, high = _fill_time(2, 40.0) - _fill_time(2, 20.0), _fill_time(2, 80.0) - _fill_time(2, 60.0)
    assert high > 0.5 * low  # still filling, but the pump is working against 60-80 mmHg
    p = Physics(zones=1, heaters=0, config=SimConfig())
    p.zones[0].inlet_open, p.zones[0].exhaust_open, p.pump_duty = True, False, 0.3
    p.advance_to(5.0)
    assert p.zones[0].pressure == 0.0  # below the stall duty the pump does not turn


@pytest.mark.parametrize("zone", range(4))
def test_exhaust_vents_80_to_5_in_1_to_3_s(zone: int) -> None:
    p = Physics(zones=4, heaters=0, config=SimConfig())
    z = p.zones[zone]
    z.pressure, z.exhaust_open = 80.0, True
    t = 0.0
    while z.pressure >= 5.0:
        t += 0.01
        p.advance_to(t)
    assert 1.0 <= t <= 3.0


def test_a_sealed_healthy_sleeve_leaks_slowly() -> None:
    p = Physics(zones=1, heaters=0, config=SimConfig())
    z = p.zones[0]
    z.pressure, z.exhaust_open = 80.0, False
    p.advance_to(10.0)
    rate = (80.0 - z.pressure) / 10.0
    assert 0.1 <= rate <= 1.0


def test_heater_reaches_40_c_in_3_to_5_min_and_would_run_away() -> None:
    p = Physics(zones=1, heaters=1, config=SimConfig())
    p.heater_supply, p.pads[0].on = True, True
    t = 0.0
    while p.pads[0].temperature < 40.0:
        t += 1.0
        p.advance_to(t)
    assert 180 <= t <= 300
    p.advance_to(3600.0)
    assert p.pads[0].temperature > 45.0  # so the controller and the trip are exercised
    p.heater_supply = False  # cutting the supply stops even a stuck-on pad
    p.pads[0].stuck_on = True
    p.advance_to(7200.0)
    assert p.pads[0].temperature < 34.0


def test_open_inlets_share_the_manifold() -> None:
    p = Physics(zones=2, heaters=0, config=SimConfig())
    a, b = p.zones
    a.pressure, a.exhaust_open, b.exhaust_open = 60.0, False, False
    a.inlet_open = b.inlet_open = True  # pump off: the full zone empties into the other
    p.advance_to(5.0)
    assert abs(a.pressure - b.pressure) < 1.0
    # the empty sleeve's slack takes a lot of air: both settle far below 60
    assert 5.0 < b.pressure < 30.0


def test_sensor_noise_is_seeded_and_quantised() -> None:
    def readings(seed: int) -> list[float]:
        p = Physics(zones=1, heaters=0, config=SimConfig(seed=seed))
        p.zones[0].pressure = p.zones[0].sensed = 40.0
        return [p.sense_pressure(0) for _ in range(50)]

    assert readings(1) == readings(1)
    assert readings(1) != readings(2)
    values = readings(1)
    assert all(abs(v * 10 - round(v * 10)) < 1e-6 for v in values)
    assert 39.0 < sum(values) / len(values) < 41.0
    assert len(set(values)) > 3


def test_faults_fire_at_their_time() -> None:
    clock = VirtualClock()
    sim = SimulatedMassager(
        zones=4,
        heaters=2,
        clock=clock.now,
        faults=[FaultInjection(SimFault.SENSOR_OFFSET, at_s=2.0, target=1)],
    )
    clock.t = 1.9
    assert abs(sim.hardware.pressure[1].read().value) < 2.0
    clock.t = 2.1
    reading = sim.hardware.pressure[1].read()
    assert reading.value > 35.0
    assert reading.at == pytest.approx(2.1)
    assert [(i.fault, at) for i, at in sim.injected] == [(SimFault.SENSOR_OFFSET, 2.0)]


def test_process_crash_releases_every_line_and_ignores_later_orders() -> None:
    clock = VirtualClock()
    sim = SimulatedMassager(zones=4, heaters=2, clock=clock.now)
    hw = sim.hardware
    busy = Orders(zones=4, heaters=2, pump=1.0, heater_supply=True, vibration=0.5)
    busy.inlet_open[:] = [True] * 4
    busy.exhaust_open[:] = [False] * 4
    busy.heater_on[:] = [True, True]
    hw.apply(busy)
    clock.t = 5.0
    sim.inject(FaultInjection(SimFault.PROCESS_CRASH, at_s=5.0))
    hw.apply(busy)  # a dying process's last orders go nowhere
    p = sim.physics
    assert sim.crashed
    assert p.pump_duty == 0.0 and not p.heater_supply and p.vibration == 0.0
    assert all(z.exhaust_open and not z.inlet_open for z in p.zones)
    assert not any(pad.on for pad in p.pads)
    clock.t = 10.0
    sim.sync()
    assert max(z.pressure for z in p.zones) < 5.0


def test_one_tick_in_real_time_integrates_the_physics_once() -> None:
    # A real clock moves a little between the reads and writes of one tick: those calls share
    # one physics instant instead of each integrating its own sliver of time.
    t = [100.0]

    def clock() -> float:
        t[0] += 5e-6
        return t[0]

    sim = SimulatedMassager(zones=4, heaters=2, clock=clock)
    steps = 0
    step, rest = sim.physics._step, sim.physics._rest

    def counted(dt: float, integrate: Any = step) -> None:
        nonlocal steps
        steps += 1
        integrate(dt)

    # (the first tick finds the sleeves at rest and advances in closed form: one step too)
    sim.physics._step = counted  # type: ignore[method-assign]
    sim.physics._rest = lambda dt: counted(dt, rest)  # type: ignore[method-assign]
    orders = Orders(zones=4, heaters=2, pump=1.0)
    orders.inlet_open[:] = [True] * 4
    orders.exhaust_open[:] = [False] * 4
    for k in range(1, 51):
        t[0] = 100.0 + 0.02 * k
        sim.hardware.read()
        sim.hardware.apply(orders)
        assert t[0] - (100.0 + 0.02 * k) < SYNC_RESOLUTION_S  # the whole tick within the window
    assert steps == 50  # one step per 20 ms tick, not one per part
    # and no time was lost: the sleeves filled as a second of virtual time fills them
    ref = Physics(zones=4, heaters=2, config=SimConfig())
    for z in ref.zones:
        z.inlet_open, z.exhaust_open = True, False
    ref.pump_duty = 1.0
    ref.advance_to(1.0)
    filled = [z.pressure for z in sim.physics.zones]
    assert filled == pytest.approx([z.pressure for z in ref.zones], rel=0.05)
    assert min(filled) > 0.1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pump_stall", FaultInjection(SimFault.PUMP_STALL, 100.0, None)),
        ("slow_leak@12.5", FaultInjection(SimFault.SLOW_LEAK, 12.5, 2)),
        ("slow_leak:foot@3", FaultInjection(SimFault.SLOW_LEAK, 3.0, 0)),
        ("inlet_stuck_open", FaultInjection(SimFault.INLET_STUCK_OPEN, 100.0, 3)),
        ("heater_runaway@0", FaultInjection(SimFault.HEATER_RUNAWAY, 0.0, 0)),
    ],
)
def test_fault_specs_parse(spec: str, expected: FaultInjection) -> None:
    assert FaultInjection.parse(spec, zones=ZONES, default_at_s=100.0) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pump_explodes", "unknown fault 'pump_explodes'"),
        ("pump_stall@soon", "'soon' after '@' is not a number"),
        ("pump_stall@-3", "must be a finite number"),
        ("pump_stall@nan", "must be a finite number"),
        ("slow_leak:knee", "unknown zone 'knee'"),
        ("pump_stall:foot", "does not take a zone"),
    ],
)
def test_bad_fault_specs_say_why(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        FaultInjection.parse(spec, zones=ZONES, default_at_s=100.0)


@pytest.mark.parametrize(("supply", "pad_on"), [(False, False), (True, True), (True, False)])
def test_at_rest_the_closed_form_is_what_fine_steps_integrate(supply: bool, pad_on: bool) -> None:
    # No air and none coming: the simulator jumps in one closed-form step. It must land where
    # the step-by-step integration lands, pads cooling or heating and the sensors' lag included.
    def prepared() -> Physics:
        p = Physics(zones=4, heaters=2, config=SimConfig(max_step_s=0.0005))
        p.heater_supply = supply
        for pad in p.pads:
            pad.on, pad.temperature = pad_on, 38.0
        for zone in p.zones:
            zone.sensed = 12.0  # the sensors still settling after a vent
        return p

    jumped, stepped = prepared(), prepared()
    jumped.advance_to(30.0)
    assert jumped.time == 30.0
    for _ in range(60_000):
        stepped._step(0.0005)
    for a, b in zip(jumped.pads, stepped.pads, strict=True):
        assert a.temperature == pytest.approx(b.temperature, abs=0.01)
        assert a.temperature != 38.0
    for za, zb in zip(jumped.zones, stepped.zones, strict=True):
        assert za.pressure == zb.pressure == 0.0
        assert za.sensed == pytest.approx(zb.sensed, abs=1e-6)


def test_air_in_a_zone_or_an_open_inlet_is_integrated_step_by_step() -> None:
    p = Physics(zones=4, heaters=0, config=SimConfig())
    steps = 0
    step = p._step

    def counted(dt: float) -> None:
        nonlocal steps
        steps += 1
        step(dt)

    p._step = counted  # type: ignore[method-assign]
    p.zones[2].pressure = 0.5
    p.advance_to(0.1)
    assert steps == round(0.1 / p.config.max_step_s)
    p.zones[2].pressure, p.zones[1].inlet_open, steps = 0.0, True, 0
    p.advance_to(0.2)
    assert steps == round(0.1 / p.config.max_step_s)
