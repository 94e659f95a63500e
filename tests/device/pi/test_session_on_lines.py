"""Whole sessions and every fault through both GPIO backends, asserting each line's level.

The control loop drives gpiozero devices on `MockFactory` or RPi.GPIO calls on the recording
stand-in; the plant turns the lines' levels into air and heat and answers the sensor chips.
"""

from __future__ import annotations

import asyncio

import pytest

from device.backends.pi.config import Hx710bPressure, PiConfig
from device.backends.sim import FaultInjection, SimFault
from device.control.massager import Action, Command, Status
from device.runner import Runner
from device.settings import SessionSettings
from tests.device.pi.conftest import FAST_ZERO, Board, PiRig

PINS = PiConfig().pins
SETTINGS = SessionSettings(intensity=5, duration_min=5, heat="high", vibration="low")


def lines(rig: PiRig) -> dict[str, float]:
    """What every actuator line drives now."""
    d = rig.board.driven
    pins = rig.config.pins
    out = {"pump": d(pins.pump), "vibration": d(pins.vibration), "supply": d(pins.heater_supply)}
    out |= {f"heater{i}": d(p) for i, p in enumerate(pins.heaters)}
    out |= {f"inlet{i}": d(p) for i, p in enumerate(pins.inlets)}
    out |= {f"exhaust{i}": d(p) for i, p in enumerate(pins.exhausts)}
    return out


def expected(rig: PiRig) -> dict[str, float]:
    """The levels the tick's orders call for under the reference wiring."""
    o = rig.orders
    out = {"pump": o.pump, "vibration": o.vibration, "supply": float(o.heater_supply)}
    out |= {f"heater{i}": float(on) for i, on in enumerate(o.heater_on)}
    out |= {f"inlet{i}": float(v) for i, v in enumerate(o.inlet_open)}
    out |= {f"exhaust{i}": float(not v) for i, v in enumerate(o.exhaust_open)}  # energise=close
    return out


def all_low(rig: PiRig) -> dict[str, float]:
    return dict.fromkeys(lines(rig), 0.0)


def assert_follows(rig: PiRig) -> None:
    got, want = lines(rig), expected(rig)
    wrong = {k: (got[k], want[k]) for k in want if abs(got[k] - want[k]) > 1e-9}
    assert not wrong, f"t={rig.now:.2f}: line (driven, ordered): {wrong}"


@pytest.mark.untraced
def test_a_whole_session_drives_every_line_as_ordered(board: Board) -> None:
    rig = PiRig(board, SETTINGS)
    assert lines(rig) == all_low(rig)  # claimed low: the safe state
    rig.send(Action.START)
    seen = {"pump": False, "inlet0": False, "exhaust0": False, "heater0": False, "vibration": False}
    while rig.massager.session is None or rig.massager.session.end_reason is None:
        rig.tick()
        assert_follows(rig)
        for name, level in lines(rig).items():
            if name in seen and level > 0:
                seen[name] = True
        assert rig.now < SETTINGS.duration_min * 60 + 60
    assert all(seen.values()), seen  # every kind of line was driven at some point
    assert rig.massager.session is not None
    assert rig.massager.session.end_reason == "completed", rig.events
    assert rig.run_until(lambda: rig.status is Status.IDLE, timeout=15)
    assert lines(rig) == all_low(rig)
    assert max(rig.pressures) < 5.0


# As in tests/device/test_faults.py (the simulator alone): the same faults at the same time
# must be caught the same way when the readings come through ADCs and the orders through lines.
FAULT_SETTINGS = SessionSettings(intensity=5, duration_min=6, heat="high")
FAULTS: dict[SimFault, str] = {
    SimFault.HOSE_DISCONNECT: "inflate_timeout",
    SimFault.SLOW_LEAK: "leak",
    SimFault.EXHAUST_STUCK_CLOSED: "vent_failure",
    SimFault.INLET_STUCK_OPEN: "inflate_timeout",
    SimFault.PUMP_STALL: "inflate_timeout",
    SimFault.SENSOR_STUCK: "sensor_fault",
    SimFault.SENSOR_OFFSET: "sensor_fault",
    SimFault.HEATER_RUNAWAY: "overtemp",
}


@pytest.mark.untraced
@pytest.mark.parametrize("fault", list(FAULTS), ids=str)
def test_each_fault_through_the_lines_ends_safe_on_every_line(
    board: Board, fault: SimFault
) -> None:
    code = FAULTS[fault]
    zones = ["foot", "ankle", "calf", "upper_calf"]
    injection = FaultInjection.parse(fault.value, zones=zones, default_at_s=100.0)
    rig = PiRig(board, FAULT_SETTINGS, faults=[injection])
    rig.start()
    raised = rig.run_until(lambda: f"fault:{code}" in rig.events, timeout=400)
    assert raised, rig.events
    # nothing else went wrong first, except MEDIUM reports on the way (a stalled pump leaves
    # the zones that are up holding, which can pass the hold limit before the inflate timeout)
    before = rig.events[: rig.events.index(f"fault:{code}")]
    assert {e for e in before if e.startswith("fault:")} <= {"fault:hold_too_long"}, rig.events
    if code == "leak":  # MEDIUM: reported, the session goes on; then the user stops it
        assert rig.status is Status.RUNNING
        rig.send(Action.STOP)
    assert rig.run_until(lambda: rig.status in (Status.IDLE, Status.FAULT), timeout=30)
    rig.run(1.0)
    assert_follows(rig)
    # Pump, heat and vibration off, every exhaust unpowered (open). The inlets follow the
    # orders: when a zone seems not to vent, the supervisor opens them (pump off) so it vents
    # through the manifold too.
    safe = {k: v for k, v in lines(rig).items() if not k.startswith("inlet")}
    assert safe == dict.fromkeys(safe, 0.0)
    assert rig.run_until(lambda: max(rig.pressures) < 5.0, timeout=30)
    if code in ("vent_failure", "sensor_fault", "overtemp"):
        assert rig.status is Status.FAULT  # HIGH: latched


def test_a_dying_process_releases_the_lines_and_the_sleeves_vent(board: Board) -> None:
    rig = PiRig(board, SETTINGS)
    rig.start()
    assert rig.run_until(lambda: max(rig.pressures) > 40.0, timeout=120)
    assert lines(rig)["pump"] > 0
    board.die()  # kill -9: nothing runs the loop, the kernel releases the lines
    assert lines(rig) == all_low(rig)  # released lines: the gate pull-downs hold them low
    rig.plant.sync()
    physics = rig.sim.physics
    physics.advance_to(rig.now + 3.0)
    assert max(z.pressure for z in physics.zones) < 5.0
    assert physics.pump_duty == 0.0 and not physics.heater_supply


def _runner(rig: PiRig) -> Runner:
    def on_tick(now: float) -> None:
        rig.plant.sync()
        rig.pi.pressure.poll()
        rig.pi.temperature.poll()

    return Runner(massager=rig.massager, hardware=rig.pi.hardware, clock=rig.clock, on_tick=on_tick)


async def _until_pumping(rig: PiRig, task: asyncio.Task[None]) -> None:
    while lines(rig)["pump"] == 0.0:
        assert not task.done()
        await asyncio.sleep(0)


def test_cancelling_the_loop_mid_inflation_leaves_every_line_low(board: Board) -> None:
    rig = PiRig(board, SETTINGS)
    runner = _runner(rig)

    async def scenario() -> None:
        task = asyncio.create_task(runner.run())
        runner.submit(Command(action=Action.START))
        await _until_pumping(rig, task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert lines(rig) == all_low(rig)


def test_an_exception_in_the_loop_leaves_every_line_low(board: Board) -> None:
    rig = PiRig(board, SETTINGS)
    runner = _runner(rig)
    sensor = rig.pi.hardware.pressure[2]

    async def scenario() -> None:
        task = asyncio.create_task(runner.run())
        runner.submit(Command(action=Action.START))
        await _until_pumping(rig, task)

        def broken() -> None:
            raise RuntimeError("sensor driver bug")

        sensor.read = broken  # type: ignore[method-assign,assignment]
        with pytest.raises(RuntimeError, match="sensor driver bug"):
            await task

    asyncio.run(scenario())
    assert lines(rig) == all_low(rig)


def test_closing_the_hardware_writes_every_line_low_before_releasing_it(board: Board) -> None:
    rig = PiRig(board, SETTINGS)
    rig.start()
    assert rig.run_until(lambda: lines(rig)["pump"] > 0 and lines(rig)["exhaust0"] > 0, 60)
    rig.pi.close()
    assert lines(rig) == all_low(rig)
    if board.name == "rpigpio":
        fake = board.fake  # type: ignore[attr-defined]
        cleanup = fake.calls.index(next(c for c in fake.calls if c.startswith("cleanup")))
        assert cleanup == len(fake.calls) - 1
        assert fake.direction == {}  # every line released
        assert (PINS.pump, 0.0) in fake.writes and (PINS.exhausts[0], 0.0) in fake.writes
    else:
        factory = board.factory  # type: ignore[attr-defined]
        for pin in (factory.pin(PINS.pump), factory.pin(PINS.exhausts[0])):
            assert pin.function == "input"  # released
            assert pin.states[-1].state == 0  # and written low before


def test_a_session_on_hx710b_sensors(board: Board) -> None:
    config = PiConfig(pressure=Hx710bPressure(counts_per_mmhg=4000.0), zero=FAST_ZERO)
    rig = PiRig(board, SessionSettings(intensity=3, duration_min=5), config=config)
    assert abs(rig.pi.zero_offsets[0]) < 2.0
    rig.start()
    assert rig.run_until(lambda: rig.massager.phase is not None and max(rig.pressures) > 25, 90)
    readings = [s.value for s in rig.pi.hardware.read().pressure]
    true = rig.pressures
    for got, want in zip(readings, true, strict=True):
        assert got == pytest.approx(want, abs=3.0)  # noise, lag and one tick of age
    rig.send(Action.STOP)
    assert rig.run_until(lambda: rig.status is Status.IDLE, timeout=15)
    assert lines(rig) == all_low(rig)


def test_an_adc_that_stops_answering_trips_sensor_fault_within_the_stale_limit(
    board: Board,
) -> None:
    rig = PiRig(board, SETTINGS)
    rig.start()
    assert rig.run_until(lambda: max(rig.pressures) > 20.0, timeout=60)
    del rig.plant.bus.config[0x48]  # the pressure ADC drops off the bus: every read fails
    rejected = rig.pi.pressure.rejected
    ticks = 0
    while "fault:sensor_fault" not in rig.events:
        rig.tick()
        ticks += 1
        assert ticks <= 10, rig.events
    assert ticks <= rig.device.limits.sensor_stale_ticks + 1  # samples stop ageing well: caught
    assert rig.pi.pressure.rejected - rejected >= 4 * (ticks - 1)  # each zone, each poll
    assert rig.status is Status.FAULT
    safe = {k: v for k, v in lines(rig).items() if not k.startswith("inlet")}
    assert safe == dict.fromkeys(safe, 0.0)  # vented, pump and heat off at once


def test_occasional_rejected_frames_do_not_trip_but_a_dead_sensor_does(board: Board) -> None:
    config = PiConfig(pressure=Hx710bPressure(counts_per_mmhg=4000.0), zero=FAST_ZERO)
    rig = PiRig(board, SessionSettings(intensity=3, duration_min=5), config=config)
    rig.start()
    chips = rig.plant.hx710b
    assert chips is not None
    chips.out_of_step_every = 3  # a third of the frames are dropped by the driver
    rejected = rig.pi.pressure.rejected
    rig.run(20.0)
    assert rig.pi.pressure.rejected - rejected >= 4 * 300  # ≈ 1/3 of 1000 frames × 4 chips
    assert not any(e.startswith("fault:") for e in rig.events), rig.events
    assert rig.status is Status.RUNNING
    chips.dead = True  # unplugged: no conversion is ever ready again
    ticks = 0
    while "fault:sensor_fault" not in rig.events:
        rig.tick()
        ticks += 1
        assert ticks <= 10, rig.events
    assert rig.status is Status.FAULT
