"""Discovery payloads: exact, and free of the mistakes Home Assistant punishes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bridge.discovery import (
    DeviceInfo,
    component_payloads,
    device_payload,
    discovery_messages,
    owned_retained_topics,
)
from device.control.faults import FaultCode
from device.control.massager import Status
from device.settings import PRESETS, Heat, Mode, Posture, Vibration

GOLDEN = Path(__file__).parent / "golden" / "discovery-device.json"
INFO = DeviceInfo(
    device_id="legwave_0a1b2c3d",
    base_topic="legwave/legwave_0a1b2c3d",
    zones=("foot", "ankle", "calf", "upper_calf"),
    version="0.1.0",
)
ENTITY_KEYS = {
    "power", "start", "stop", "pause", "resume", "vent", "preset", "mode", "intensity",
    "duration", "heat", "vibration", "zone_boost", "posture", "status", "remaining", "ends_at",
    "progress", "pressure_foot", "pressure_ankle", "pressure_calf", "pressure_upper_calf",
    "heater", "problem", "fault", "session", "selftest", "selftest_result", "sessions_completed",
    "command", "therapy_today", "therapy_7d", "sessions_week", "streak", "adherence",
    "last_session", "started", "loop_lateness", "late_ticks", "cpu_temperature", "broker",
}  # fmt: skip


def components() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = device_payload(INFO)["components"]
    return out


def test_device_payload_is_exactly_the_reviewed_one() -> None:
    assert device_payload(INFO) == json.loads(GOLDEN.read_text())


def test_every_spec_entity_is_there_with_a_stable_unique_id() -> None:
    comps = components()
    assert {c["unique_id"].removeprefix("legwave_0a1b2c3d_") for c in comps.values()} == ENTITY_KEYS
    assert set(comps) == {c["unique_id"] for c in comps.values()}


def test_no_object_id_and_default_entity_ids_carry_their_platform() -> None:
    text = json.dumps(device_payload(INFO))
    assert "object_id" not in text
    for c in components().values():
        assert c["default_entity_id"].split(".")[0] == c["platform"]
    assert components()["legwave_0a1b2c3d_power"]["default_entity_id"] == "switch.leg_massager"
    assert components()["legwave_0a1b2c3d_power"]["name"] is None  # named after the device


def test_root_blocks() -> None:
    p = device_payload(INFO)
    assert p["device"]["identifiers"] == ["legwave_0a1b2c3d"]
    assert p["device"]["name"] == "Leg Massager"
    assert p["origin"] == {"name": "legwave", "sw_version": "0.1.0"}
    assert p["availability_topic"] == "legwave/legwave_0a1b2c3d/availability"
    assert "~" not in json.dumps(p)


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("mode", [m.value for m in Mode]),
        ("heat", [h.value for h in Heat]),
        ("vibration", [v.value for v in Vibration]),
        ("posture", [p.value for p in Posture]),
        ("preset", list(PRESETS)),
        ("status", [s.value for s in Status]),
        ("fault", ["none", *(f.value for f in FaultCode)]),
    ],
)
def test_every_state_value_is_one_of_the_options(key: str, values: list[str]) -> None:
    assert components()[f"legwave_0a1b2c3d_{key}"]["options"] == values


def test_sensors_never_use_the_config_category() -> None:
    for c in components().values():
        if c["platform"] in ("sensor", "binary_sensor"):
            assert c.get("entity_category") != "config"
        if "options" in c and c["platform"] == "sensor":
            assert c["device_class"] == "enum"


def test_events_read_the_event_topic_and_buttons_have_no_state() -> None:
    comps = components()
    assert comps["legwave_0a1b2c3d_session"]["state_topic"] == "legwave/legwave_0a1b2c3d/event"
    assert "state_topic" not in comps["legwave_0a1b2c3d_stop"]
    assert json.loads(comps["legwave_0a1b2c3d_vent"]["payload_press"]) == {"action": "vent"}


def test_pressure_sensors_are_diagnostic_and_off_by_default() -> None:
    c = components()["legwave_0a1b2c3d_pressure_upper_calf"]
    assert c["name"] == "Upper calf pressure"
    assert (c["entity_category"], c["enabled_by_default"], c["unit_of_measurement"]) == (
        "diagnostic",
        False,
        "mmHg",
    )


def test_per_component_style_repeats_device_origin_and_availability() -> None:
    payloads = component_payloads(INFO)
    assert len(payloads) == len(ENTITY_KEYS)
    topic = "homeassistant/switch/legwave_0a1b2c3d/power/config"
    switch = payloads[topic]
    assert "platform" not in switch
    assert switch["device"]["identifiers"] == ["legwave_0a1b2c3d"]
    assert switch["availability_topic"].endswith("/availability")
    assert len(discovery_messages(INFO, "per_component")) == len(ENTITY_KEYS)
    assert [t for t, _ in discovery_messages(INFO, "device")] == [
        "homeassistant/device/legwave_0a1b2c3d/config"
    ]


def test_remove_covers_both_styles_and_the_retained_state() -> None:
    topics = owned_retained_topics(INFO)
    assert "homeassistant/device/legwave_0a1b2c3d/config" in topics
    assert "homeassistant/switch/legwave_0a1b2c3d/power/config" in topics
    assert "legwave/legwave_0a1b2c3d/state" in topics
    assert "legwave/legwave_0a1b2c3d/availability" in topics


def test_the_registrar_passes_a_device_s_own_discovery_as_it_is() -> None:
    from bridge.registrar import check_draft

    payload = json.dumps(device_payload(INFO)).encode()
    assert check_draft(INFO.device_id, payload) == device_payload(INFO)


def _hijacked(change: Any) -> bytes:
    body = device_payload(INFO)
    change(body)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            _hijacked(lambda b: b["components"]["legwave_0a1b2c3d_stop"].update(
                command_topic="legwave/bedroom/set")),
            "command_topic: 'legwave/bedroom/set' is not this device's topic",
        ),
        (
            _hijacked(lambda b: b.update(availability_topic="legwave/bedroom/availability")),
            "availability_topic",
        ),
        (
            _hijacked(lambda b: b["components"]["legwave_0a1b2c3d_power"].update(cmd_t="x/set")),
            "cmd_t",
        ),
        (_hijacked(lambda b: b.update({"~": "legwave/bedroom"})), "no base topic abbreviation"),
        (_hijacked(lambda b: b["device"].update(identifiers=["bedroom"])), "identifiers"),
        (
            _hijacked(lambda b: b["components"].update(bedroom_stop={
                **b["components"]["legwave_0a1b2c3d_stop"], "unique_id": "bedroom_stop"})),
            "unique id",
        ),
        (
            _hijacked(lambda b: b.update(availability=[{"topic": "legwave/bedroom/availability"}])),
            "availability[0].topic",
        ),
        (b"{", "not JSON"),
        (b"[]", "not a device-based discovery payload"),
        (b"x" * 70_000, "bytes; at most"),
    ],
)  # fmt: skip
def test_the_registrar_refuses_what_names_another_device(payload: bytes, reason: str) -> None:
    from bridge.registrar import DraftRefusedError, check_draft

    with pytest.raises(DraftRefusedError, match=re.escape(reason)):
        check_draft(INFO.device_id, payload)


def test_in_registrar_style_the_device_publishes_only_on_its_own_topic() -> None:
    (topic, payload), = discovery_messages(INFO, "registrar")  # fmt: skip
    assert topic == "legwave/legwave_0a1b2c3d/discovery"
    assert json.loads(payload) == device_payload(INFO)
    assert topic in owned_retained_topics(INFO)  # `legwave remove` clears it too


@pytest.mark.parametrize(
    ("name", "switch"),
    [
        ("Leg Massager", "switch.leg_massager"),
        ("Bedroom massager", "switch.bedroom_massager"),
        ("Jürgen's Beinmassage", "switch.jurgen_s_beinmassage"),
        ("Straße 2", "switch.strasse_2"),
    ],
)
def test_the_entity_ids_follow_the_devices_name(name: str, switch: str) -> None:
    info = dataclasses.replace(INFO, name=name)
    comps = device_payload(info)["components"]
    assert comps["legwave_0a1b2c3d_power"]["default_entity_id"] == switch
    status = comps["legwave_0a1b2c3d_status"]["default_entity_id"]
    assert status == switch.replace("switch.", "sensor.") + "_status"
    assert device_payload(info)["device"]["name"] == name


def test_the_command_entity_sends_a_whole_command_to_the_device() -> None:
    command = components()["legwave_0a1b2c3d_command"]
    assert command["platform"] == "notify"
    assert command["command_topic"] == "legwave/legwave_0a1b2c3d/set"
    assert "state_topic" not in command
