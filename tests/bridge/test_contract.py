"""The MQTT contract: what goes out validates against the models it is documented from."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from bridge.contract import (
    EVENT_FIELDS,
    DiagnosticsMessage,
    EventMessage,
    SelftestReport,
    State,
    StatsMessage,
    Telemetry,
    UpdateMessage,
    response,
)
from bridge.entities import EVENT_TYPES, Entity, entity_table
from device.backends.sim import FaultInjection, SimFault
from device.control.massager import Action, EventType, Massager, Status
from device.harness import SimulatedDevice as Rig
from device.settings import DeviceSettings, SessionSettings

SHORT = SessionSettings(duration_min=5)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def state_of(rig: Rig) -> State:
    return State.of(rig.massager.snapshot(rig.now), uptime_s=rig.now, version="0.0.0")


def test_the_state_of_a_running_session_validates_against_its_model() -> None:
    rig = Rig(SHORT)
    rig.start()
    rig.run(30.0)
    payload = state_of(rig).payload()
    state = State.model_validate_json(payload)  # every field, its type and no other field
    assert state.status is Status.RUNNING and state.power == "ON"
    assert state.remaining_s + state.elapsed_s == pytest.approx(300, abs=1)
    assert set(state.pressure_mmhg) == {"foot", "ankle", "calf", "upper_calf"}
    assert str(state.ends_at).endswith("+00:00")
    assert set(json.loads(payload)) == set(State.model_fields)


def test_readings_are_tenths_and_never_negative_zero() -> None:
    rig = Rig(SHORT)
    seen: list[float] = []
    for _ in range(3):  # idle (sensor noise around zero), running, venting, idle again
        for _ in range(40):
            for model in (state_of(rig), Telemetry.of(rig.massager.snapshot(rig.now))):
                data = json.loads(model.payload())
                seen += [*data["pressure_mmhg"].values(), data["heater_c"]]
                seen += [t for t in data["target_mmhg"].values() if t is not None]
            rig.run(0.25)
        if rig.status is Status.IDLE:
            rig.start()
        else:
            rig.send(Action.STOP)
    assert any(v > 1.0 for v in seen), "the session did squeeze"
    assert any(v == 0.0 for v in seen), "idle readings round to zero"
    for v in seen:
        assert isinstance(v, float)
        assert round(v, 1) == v, v
        assert math.copysign(1.0, v) == 1.0 or v < 0, "negative zero"


def test_the_state_before_any_sample_is_strict_json() -> None:
    """No temperature has been read yet: the heater shows as unknown, never as NaN."""
    massager = Massager(device=DeviceSettings(), wall=lambda t: EPOCH, new_id=lambda: "s")
    state = State.of(massager.snapshot(0.0), uptime_s=0, version="0.0.0")
    assert state.heater_c is None
    json.loads(state.payload(), parse_constant=lambda c: pytest.fail(f"{c} in the state"))
    massager.temperatures = [math.nan, 36.44]  # one sensor has a reading, the other not yet
    assert State.of(massager.snapshot(0.0), uptime_s=0, version="").heater_c == 36.4


def test_every_event_type_validates_and_carries_exactly_its_own_fields() -> None:
    hose_off = FaultInjection(SimFault.HOSE_DISCONNECT, at_s=0.0)
    runs = [Rig(SHORT), Rig(SHORT, faults=[hose_off]), Rig(SHORT)]
    session, faulty, selftest = runs
    session.start()
    session.run(5.0)
    session.send(Action.STOP)
    session.run(1.0)
    faulty.send(Action.START)
    assert faulty.run_until(lambda: faulty.massager.fault is not None, 30.0)
    faulty.send(Action.CLEAR_FAULT)
    selftest.send(Action.SELFTEST)
    assert selftest.run_until(lambda: selftest.status is not Status.SELF_TEST, 300.0)
    seen: dict[str, dict[str, Any]] = {}
    for event in [e for rig in runs for e in rig.journal]:
        payload = EventMessage.of(event).payload()
        EventMessage.model_validate_json(payload)
        body = json.loads(payload)
        fields = set(body) - {"event_type", "session_id"}
        assert fields == set(EVENT_FIELDS[EventType(body["event_type"])]), body
        seen.setdefault(body["event_type"], body)
    assert set(seen) >= {e.value for e in EventType} - {"session_completed"}
    assert seen["session_started"]["intensity"] == SHORT.intensity
    assert seen["session_stopped"]["end_reason"] == "stopped"
    assert seen["fault_raised"]["code"] == "no_sleeve"


def test_responses_validate_against_their_model() -> None:
    rig = Rig(SHORT)
    ok = json.loads(response(ok=True, transaction="t1", state=state_of(rig)))
    assert ok["status"] == "ok" and ok["state"]["status"] == "idle" and "error" not in ok
    refused = json.loads(
        response(ok=False, transaction=7, code="invalid", message="intensity: too big", field="x")
    )
    assert refused["error"] == {"code": "invalid", "message": "intensity: too big", "field": "x"}
    assert "state" not in refused


READS: dict[str, type[BaseModel]] = {
    "state": State,
    "event": EventMessage,
    "selftest": SelftestReport,
    "stats": StatsMessage,
    "diagnostics": DiagnosticsMessage,
    "update": UpdateMessage,
}


def unknown_fields(entities: list[Entity]) -> list[str]:
    """Every `value_json.<field>` a template names that the message it reads does not have."""
    problems = []
    for e in entities:
        model = READS[e.reads]
        for option, template in e.options.items():
            if not (option.endswith("_template") and isinstance(template, str)):
                continue
            for name in re.findall(r"value_json\.(\w+)", template):
                if name not in model.model_fields:
                    problems.append(f"{e.key}.{option}: {model.__name__} has no {name}")
    return problems


def test_the_entity_table_names_only_fields_the_device_sends() -> None:
    table = entity_table(["foot", "calf"], updates=True)
    named = sum(len(re.findall(r"value_json", str(e.options))) for e in table)
    assert named >= 15
    assert unknown_fields(table) == []


def test_a_template_naming_a_missing_field_is_caught() -> None:
    wrong = Entity("power", "switch", None, {"value_template": "{{ value_json.power_state }}"})
    assert unknown_fields([wrong]) == ["power.value_template: State has no power_state"]


def test_the_event_entity_lists_every_event_type() -> None:
    assert [e.value for e in EventType] == EVENT_TYPES
