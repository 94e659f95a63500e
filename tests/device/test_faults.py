"""Every simulator fault, injected mid-session, ends safe with the right fault code."""

from __future__ import annotations

import pytest

from device.backends.sim import FaultInjection, SimFault
from device.backends.sim.faults import WIRING_FAULTS
from device.control.massager import Action, Status
from device.harness import SimulatedDevice as Rig
from device.settings import DeviceSettings, SessionSettings

SETTINGS = SessionSettings(intensity=5, duration_min=6, heat="high")
AT_S = 100.0
ZONES = list(DeviceSettings().zones)

# fault → (the fault code that must be raised, how the session must end)
EXPECTED: dict[SimFault, tuple[str | None, str]] = {
    SimFault.HOSE_DISCONNECT: ("inflate_timeout", "fault:inflate_timeout"),
    SimFault.SLOW_LEAK: ("leak", "completed"),  # MEDIUM: reported, the session goes on
    SimFault.EXHAUST_STUCK_CLOSED: ("vent_failure", "fault:vent_failure"),
    SimFault.INLET_STUCK_OPEN: ("inflate_timeout", "fault:inflate_timeout"),
    SimFault.PUMP_STALL: ("inflate_timeout", "fault:inflate_timeout"),
    SimFault.SENSOR_STUCK: ("sensor_fault", "fault:sensor_fault"),
    SimFault.SENSOR_OFFSET: ("sensor_fault", "fault:sensor_fault"),
    SimFault.HEATER_RUNAWAY: ("overtemp", "fault:overtemp"),
}


@pytest.mark.parametrize("fault", list(EXPECTED), ids=str)
def test_fault_mid_session_ends_safe_with_the_right_code(fault: SimFault) -> None:
    code, end_reason = EXPECTED[fault]
    injection = FaultInjection.parse(fault.value, zones=list(Rig().device.zones), default_at_s=AT_S)
    rig = Rig(SETTINGS, faults=[injection])
    rig.start()
    ended = rig.run_until(
        lambda: rig.massager.session is not None and rig.massager.session.end_reason is not None,
        timeout=SETTINGS.duration_min * 60.0 + 60.0,
    )
    assert ended, rig.events
    session = rig.massager.session
    assert session is not None
    assert session.end_reason == end_reason, rig.events
    assert f"fault:{code}" in rig.events
    first_fault = next(e for e in rig.events if e.startswith("fault:"))
    assert first_fault == f"fault:{code}", rig.events
    # the sleeves vent, pump and heat are off
    assert rig.run_until(lambda: max(rig.pressures) < 5.0, timeout=15.0), rig.pressures
    physics = rig.sim.physics
    assert physics.pump_duty == 0.0
    assert not physics.heater_supply
    assert physics.vibration == 0.0
    if end_reason.startswith("fault:") and code in ("vent_failure", "sensor_fault", "overtemp"):
        assert rig.status is Status.FAULT  # HIGH: latched until clear_fault
    else:
        assert rig.status in (Status.IDLE, Status.VENTING)


def test_every_simulator_fault_is_covered() -> None:
    # wiring faults: tests/device/test_selftest.py
    assert set(EXPECTED) | {SimFault.PROCESS_CRASH} | WIRING_FAULTS == set(SimFault)


def test_process_crash_vents_the_sleeves_by_physics() -> None:
    rig = Rig(SETTINGS)
    rig.start()
    assert rig.run_until(lambda: max(rig.pressures) > 40.0, timeout=120.0)
    rig.sim.inject(FaultInjection(SimFault.PROCESS_CRASH, at_s=rig.now + rig.runner.period))
    rig.tick()
    assert rig.sim.crashed
    # nothing runs the control loop any more: the released lines vent by physics alone
    physics = rig.sim.physics
    physics.advance_to(rig.now + 3.0)
    assert max(z.pressure for z in physics.zones) < 5.0
    assert physics.pump_duty == 0.0 and not physics.heater_supply


def test_hose_off_before_start_fails_the_fit_check() -> None:
    rig = Rig(SETTINGS, faults=[FaultInjection(SimFault.HOSE_DISCONNECT, at_s=0.0)])
    rig.send(Action.START)
    assert rig.run_until(lambda: rig.status is Status.IDLE, timeout=30.0)
    assert "fault:no_sleeve" in rig.events
    session = rig.massager.session
    assert session is not None and session.end_reason == "fault:no_sleeve"
    assert session.running_s == 0.0  # it never ran: no pumping into the air for a session


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ("sensor_dead:foot@0", "no_sleeve"),  # before the start: the fit check fills the foot
        ("sensor_dead:calf@0", "inflate_timeout"),
        ("sensor_dead:foot@100", "inflate_timeout"),
        ("sensor_dead:upper_calf@100", "inflate_timeout"),
    ],
)
def test_a_dead_sensor_stops_the_filling_long_before_the_hard_limit(spec: str, code: str) -> None:
    """A dead channel reads noise around 0 while its zone fills: only "no rise" can see it.

    The soak found it: the zone reached 124 mmHg (over 220 with other zones) before the
    30 s inflate timeout. Now no zone's true pressure passes what the session itself reaches
    without a fault (the foot's 52 mmHg at intensity 5).
    """
    rig = Rig(SETTINGS, faults=[FaultInjection.parse(spec, zones=ZONES, default_at_s=0.0)])
    rig.send(Action.START)
    peak = 0.0
    for _ in range(round(160.0 / rig.runner.period)):
        rig.tick()
        peak = max(peak, *(z.pressure for z in rig.sim.physics.zones))
        if rig.massager.session is not None and rig.massager.session.end_reason is not None:
            break
    session = rig.massager.session
    assert session is not None and session.end_reason == f"fault:{code}", rig.events
    assert peak < 55.0, peak
    assert rig.run_until(lambda: max(rig.pressures) < 5.0, timeout=15.0)
