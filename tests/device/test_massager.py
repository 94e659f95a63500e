"""The session lifecycle through the public command API (README: Session)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from device.control.massager import Action, CommandRejectedError, Status
from device.control.patterns import Phase
from device.harness import SimulatedDevice as Rig
from device.settings import (
    DeviceSettings,
    Heat,
    Limits,
    Mode,
    SessionSettings,
    SettingChanges,
    Vibration,
)

SHORT = SessionSettings(duration_min=5)


@pytest.mark.untraced
def test_start_fit_check_running_then_completed_and_vented() -> None:
    rig = Rig(SHORT)
    outcome = rig.send(Action.START)
    assert outcome.changed
    assert rig.status is Status.FIT_CHECK
    rig.tick()
    assert rig.orders.inlet_open[0] and rig.orders.pump > 0  # fit check inflates zone 1
    assert rig.run_until(lambda: rig.status is Status.RUNNING, 15.0)
    assert rig.massager.pattern is not None
    assert rig.run_until(lambda: rig.status is Status.VENTING, 5 * 60 + 5)
    assert rig.run_until(lambda: rig.status is Status.IDLE, 10.0)
    assert max(rig.pressures) < 5.0
    record = rig.massager.history[-1]
    assert record.end_reason == "completed"
    assert record.running_s == pytest.approx(300.0, abs=0.05)
    assert record.ended_at is not None and record.ended_at > record.started_at
    assert rig.massager.sessions_completed == 1
    assert rig.events[0] == "session_started" and "session_completed" in rig.events
    assert rig.orders.is_safe()


def test_stop_vents_in_the_same_tick() -> None:
    rig = Rig(SHORT)
    rig.start()
    assert rig.run_until(lambda: max(rig.pressures) > 15.0, 60.0)  # soft start: level 1
    rig.send(Action.STOP)
    physics = rig.sim.physics
    # applied at once, before any further tick
    assert physics.pump_duty == 0.0
    assert all(z.exhaust_open and not z.inlet_open for z in physics.zones)
    assert rig.status is Status.VENTING
    assert rig.run_until(lambda: rig.status is Status.IDLE, 5.0)
    assert rig.massager.history[-1].end_reason == "stopped"
    assert "session_stopped" in rig.events


def test_vent_while_idle_vents_and_returns_to_idle() -> None:
    rig = Rig(SHORT)
    outcome = rig.send(Action.VENT)
    assert outcome.changed and rig.status is Status.VENTING
    assert rig.run_until(lambda: rig.status is Status.IDLE, 2.0)


def test_pause_vents_stops_heat_and_vibration_and_resume_keeps_the_time() -> None:
    rig = Rig(SessionSettings(duration_min=5, heat=Heat.HIGH, vibration=Vibration.HIGH))
    rig.start()
    rig.run(60.0)
    assert rig.orders.heater_supply and rig.orders.vibration == 1.0
    remaining = rig.massager.remaining_s()
    rig.send(Action.PAUSE)
    assert rig.status is Status.PAUSED
    rig.run(30.0)
    assert max(rig.pressures) < 5.0
    assert not rig.orders.heater_supply and rig.orders.vibration == 0.0
    assert rig.massager.remaining_s() == pytest.approx(remaining, abs=0.05)
    assert rig.massager.snapshot(rig.now).ends_at is None
    rig.send(Action.RESUME)
    assert rig.status is Status.RUNNING
    rig.run(10.0)
    assert rig.massager.remaining_s() == pytest.approx(remaining - 10.0, abs=0.1)
    assert rig.orders.vibration == 1.0


def test_a_pause_that_lasts_too_long_ends_the_session() -> None:
    # the shortest pause limit a configuration may set: a minute of ticks, not half an hour
    rig = Rig(SHORT, device=DeviceSettings(limits=Limits(max_pause_min=1)))
    rig.start()
    rig.send(Action.PAUSE)
    rig.run(rig.device.limits.max_pause_min * 60.0 + 1.0)
    assert rig.status is Status.IDLE
    assert rig.massager.history[-1].end_reason == "stopped"


def test_start_while_running_is_idempotent_and_says_so() -> None:
    rig = Rig(SHORT)
    rig.start()
    session = rig.massager.session
    outcome = rig.send(Action.START)
    assert not outcome.changed and "already running" in outcome.message
    assert rig.massager.session is session


@pytest.mark.parametrize(
    ("changes", "field"), [({"intensity": 9}, "intensity"), ({"mode": "shake"}, "mode")]
)
def test_changes_out_of_range_cannot_even_be_made(changes: dict[str, object], field: str) -> None:
    """Ranges are checked once, where a command is made (the codec): the device never sees one."""
    with pytest.raises(ValidationError) as err:
        SettingChanges.model_validate(changes)
    assert [e["loc"] for e in err.value.errors()] == [(field,)]


def test_a_change_the_device_cannot_take_is_rejected_whole_with_its_field() -> None:
    rig = Rig(SHORT)
    before = rig.massager.settings
    with pytest.raises(CommandRejectedError) as err:
        rig.send(Action.START, intensity=6, zone_boost="knee")
    assert err.value.code == "invalid"
    assert err.value.field == "zone_boost"
    assert "unknown zone 'knee'" in err.value.message
    assert rig.status is Status.IDLE and rig.massager.settings == before


def test_start_with_a_preset_is_atomic() -> None:
    rig = Rig(SHORT)
    rig.send(Action.START, preset="bedtime", duration_min=30)
    assert rig.status is Status.FIT_CHECK
    s = rig.massager.settings
    assert (s.preset, s.mode, s.duration_min) == ("bedtime", Mode.GENTLE, 30)


def test_pause_and_resume_need_a_session() -> None:
    rig = Rig(SHORT)
    with pytest.raises(CommandRejectedError, match="cannot pause while idle"):
        rig.send(Action.PAUSE)
    with pytest.raises(CommandRejectedError) as err:
        rig.send(Action.RESUME)
    assert err.value.code == "not_paused"


def test_a_latched_fault_blocks_start_until_cleared() -> None:
    rig = Rig(SHORT)
    rig.start()
    rig.sim.physics.zones[0].sensor_offset = 60.0  # a broken sensor: HIGH fault
    rig.run(0.2)
    assert rig.status is Status.FAULT and rig.massager.fault is not None
    assert rig.massager.history[-1].end_reason == "fault:sensor_fault"
    with pytest.raises(CommandRejectedError) as err:
        rig.send(Action.START)
    assert err.value.code == "fault_latched"
    rig.sim.physics.zones[0].sensor_offset = 0.0
    rig.run(0.2)
    assert rig.send(Action.CLEAR_FAULT).changed
    assert rig.massager.fault is None
    rig.tick()
    assert "fault_cleared" in rig.events
    assert rig.run_until(lambda: rig.status is Status.IDLE, 5.0)
    rig.start()


def test_intensity_change_takes_effect_on_the_next_inflation() -> None:
    rig = Rig(SessionSettings(duration_min=10, intensity=2))
    rig.start()
    rig.run(130.0)  # past the soft start
    pattern = rig.massager.pattern
    assert pattern is not None
    assert rig.run_until(lambda: pattern.phase is Phase.HOLDING, 80.0)
    rig.send(intensity=6)
    assert rig.massager.targets[0] == 30.0  # the inflation under way keeps its set-point
    assert rig.run_until(lambda: pattern.phase is Phase.INFLATING, 60.0)
    assert rig.massager.targets[0] == 70.0


def test_soft_start_begins_at_level_1() -> None:
    rig = Rig(SessionSettings(duration_min=10, intensity=7))
    rig.start()
    rig.tick()
    first = rig.massager.targets[0]
    assert first is not None and first < 25.0
    rig.run(125.0)
    assert rig.run_until(lambda: rig.massager.targets[0] == 80.0, 70.0)


@pytest.mark.untraced
def test_heat_runs_only_for_the_preset_s_minutes() -> None:
    rig = Rig(SessionSettings().with_changes(preset="bedtime"))
    rig.start()
    rig.run(60.0)
    assert rig.orders.heater_supply
    rig.run(20 * 60.0)
    assert not rig.orders.heater_supply
    assert rig.status is Status.RUNNING


def test_mode_change_mid_session_switches_pattern_at_the_cycle_boundary() -> None:
    rig = Rig(SessionSettings(duration_min=10))
    rig.start()
    rig.run(1.0)
    rig.send(mode="squeeze")
    old = rig.massager.pattern
    assert old is not None and old.phase is Phase.INFLATING
    rig.run(5.0)
    assert rig.massager.pattern is old  # the wave under way finishes its cycle
    assert rig.run_until(lambda: rig.massager.pattern is not old, 90.0)
    assert old.phase is Phase.RESTING
    rig.tick()
    assert all(t is not None for t in rig.massager.targets), "squeeze fills every zone at once"


def test_stop_then_start_at_once_vents_before_the_fit_check_and_raises_no_fault() -> None:
    """A double tap on the switch: the new session waits for the sleeves, never faults."""
    rig = Rig(SessionSettings(duration_min=15, intensity=5))
    rig.start()
    rig.run(150.0)
    assert rig.run_until(lambda: max(rig.pressures) > 50.0, 60.0)
    rig.send(Action.STOP)
    rig.tick()
    rig.send(Action.START)
    assert rig.status is Status.FIT_CHECK
    rig.tick()
    assert rig.massager.phase is Phase.VENTING  # says what it waits for
    assert rig.orders.pump == 0.0 and all(rig.orders.exhaust_open)
    assert rig.run_until(lambda: rig.status is Status.RUNNING, 30.0), rig.events
    assert not [e for e in rig.events if e.startswith("fault:")], rig.events
    assert rig.massager.fault is None
    assert rig.events == ["session_started", "session_stopped", "session_started"]


def test_pauses_adding_up_past_the_session_limit_end_it_with_a_reason_and_an_event() -> None:
    # tightened limits (a configuration may only lower them) keep the simulated time short
    limits = Limits(max_session_min=5, max_pause_min=1)
    rig = Rig(SessionSettings(duration_min=5), device=DeviceSettings(limits=limits))
    rig.start()
    began = rig.massager.history[-1].started_at if rig.massager.history else None
    session = rig.massager.session
    assert began is None and session is not None
    # long pauses, each within the pause limit: running time stays far below the 5 min
    # chosen, while the wall time passes the session limit
    while rig.status in (Status.RUNNING, Status.PAUSED):
        rig.run(20.0)
        if rig.status is Status.RUNNING:
            rig.send(Action.PAUSE)
        rig.run(limits.max_pause_min * 60.0 - 10.0)
        if rig.status is Status.PAUSED:
            rig.send(Action.RESUME)
    record = rig.massager.history[-1]
    assert record is session and record.end_reason == "time_limit"
    assert rig.events[-1] == "session_stopped"
    assert rig.status in (Status.VENTING, Status.IDLE)
    assert record.ended_at is not None
    wall_s = (record.ended_at - record.started_at).total_seconds()
    assert wall_s == pytest.approx(limits.max_session_min * 60.0, abs=0.05)
    assert record.running_s < 3 * 60.0


def test_commands_that_change_nothing_say_so() -> None:
    rig = Rig(SHORT)
    assert rig.send(Action.STOP).message == "nothing to stop while idle"
    rig.start()
    assert rig.send(Action.RESUME).message == "already running"
    rig.send(Action.PAUSE)
    outcome = rig.send(Action.PAUSE)
    assert not outcome.changed and outcome.message == "already paused"


def test_clearing_a_fault_when_there_is_none_says_so() -> None:
    rig = Rig(SHORT)
    outcome = rig.send(Action.CLEAR_FAULT)
    assert not outcome.changed and outcome.message == "no fault"


def test_start_while_paused_resumes() -> None:
    rig = Rig(SHORT)
    rig.start()
    rig.send(Action.PAUSE)
    session = rig.massager.session
    assert rig.send(Action.START).changed
    assert rig.status is Status.RUNNING and rig.massager.session is session


def test_a_new_start_clears_a_fault_that_ended_the_last_session() -> None:
    from device.backends.sim import FaultInjection, SimFault

    rig = Rig(SHORT, faults=[FaultInjection(SimFault.HOSE_DISCONNECT, at_s=0.0)])
    rig.send(Action.START)
    assert rig.run_until(lambda: rig.massager.fault is not None, 30.0)
    assert rig.run_until(lambda: rig.status is Status.IDLE, 30.0)
    rig.send(Action.START)
    assert "fault_cleared" in rig.events and rig.status is Status.FIT_CHECK
