from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from device.control.setpoints import zone_setpoints
from device.settings import (
    PRESETS,
    DeviceSettings,
    Heat,
    Limits,
    Mode,
    Posture,
    SessionSettings,
    Vibration,
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_setpoint_mmhg", 81),
        ("max_session_min", 91),
        ("hard_limit_mmhg", 121),
        ("heater_trip_c", 43.5),
        ("heat_max_min", 31),
        ("overpressure_margin_mmhg", 16),
        ("vent_timeout_s", 6),
        ("hold_max_s", 61),
    ],
)
def test_a_config_cannot_loosen_a_safety_limit(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as err:
        Limits(**{field: value})
    assert err.value.errors()[0]["loc"] == (field,)


def test_a_config_may_tighten_limits() -> None:
    limits = Limits(max_setpoint_mmhg=60, max_session_min=45)
    assert limits.max_setpoint_mmhg == 60
    device = DeviceSettings(limits=limits)
    points = zone_setpoints(device, SessionSettings(intensity=7))
    assert max(points) == 60


def test_limits_nested_in_device_settings_are_bounded_too() -> None:
    with pytest.raises(ValidationError, match=r"limits\.max_setpoint_mmhg"):
        DeviceSettings.model_validate({"limits": {"max_setpoint_mmhg": 100}})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"intensity": 8}, "intensity"),
        ({"intensity": 0}, "intensity"),
        ({"duration_min": 61}, "duration_min"),
        ({"duration_min": 4}, "duration_min"),
        ({"mode": "shake"}, "mode"),
        ({"heat": "max"}, "heat"),
        ({"preset": "sleepy"}, "preset"),
        ({"colour": "red"}, "colour"),
        ({"intensity": "high"}, "intensity"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        SessionSettings().with_changes(**changes)
    assert field in [str(loc) for e in err.value.errors() for loc in e["loc"]]


def test_presets_match_the_spec_table() -> None:
    table = {
        "recovery": (20, 3, Mode.WAVE, Heat.OFF, Vibration.OFF),
        "bedtime": (45, 2, Mode.GENTLE, Heat.MEDIUM, Vibration.OFF),
        "desk_break": (15, 3, Mode.WAVE, Heat.LOW, Vibration.OFF),
        "warm_up": (10, 3, Mode.WAVE, Heat.MEDIUM, Vibration.LOW),
        "circulation": (20, 4, Mode.PULSE, Heat.OFF, Vibration.OFF),
        "first_use": (10, 1, Mode.WAVE, Heat.OFF, Vibration.OFF),
    }
    assert set(PRESETS) == set(table)
    for name, (minutes, level, mode, heat, vibration) in table.items():
        p = PRESETS[name]
        assert (p.duration_min, p.intensity, p.mode, p.heat, p.vibration) == (
            minutes,
            level,
            mode,
            heat,
            vibration,
        ), name
        assert p.preset == name
    assert PRESETS["desk_break"].posture is Posture.SEATED
    assert PRESETS["warm_up"].rest_s == 10
    assert PRESETS["bedtime"].heat_minutes == 20


def test_choosing_a_preset_then_changing_a_field() -> None:
    s = SessionSettings().with_changes(preset="bedtime", duration_min=30)
    assert (s.preset, s.mode, s.duration_min, s.heat_minutes) == ("bedtime", Mode.GENTLE, 30, 20)
    # Changing the mode leaves the preset: its rest override goes with it.
    w = SessionSettings().with_changes(preset="warm_up").with_changes(mode="pulse")
    assert (w.preset, w.rest_s) == (None, None)


def test_zone_names_are_validated() -> None:
    with pytest.raises(ValidationError, match="unique"):
        DeviceSettings(zones=["calf", "calf"])
    with pytest.raises(ValidationError, match="must match"):
        DeviceSettings(zones=["Calf!"])
    with pytest.raises(ValidationError):
        DeviceSettings(zones=[f"z{i}" for i in range(9)])
    with pytest.raises(ValueError, match="zone_boost: unknown zone 'knee'"):
        DeviceSettings().check_session(SessionSettings(zone_boost="knee"))


def test_setpoint_ladder_gradient_and_floor() -> None:
    device = DeviceSettings()
    for level in range(1, 8):
        points = zone_setpoints(device, SessionSettings(intensity=level))
        distal = 10 + 10 * level
        assert points == [max(distal - 5 * i, 10) for i in range(4)]


def test_boost_seated_knead_caps_and_soft_start() -> None:
    device = DeviceSettings()
    assert zone_setpoints(device, SessionSettings(intensity=3, zone_boost="calf"))[2] == 40
    assert zone_setpoints(device, SessionSettings(intensity=7, zone_boost="foot"))[0] == 80
    assert max(zone_setpoints(device, SessionSettings(intensity=7, posture="seated"))) == 70
    assert zone_setpoints(device, SessionSettings(intensity=7, mode="knead"))[0] == 50
    assert zone_setpoints(device, SessionSettings(intensity=7), ramp=0.0)[0] == 20
    assert zone_setpoints(device, SessionSettings(intensity=7), ramp=0.5)[0] == 50


def test_changing_a_presets_heat_drops_its_heat_time_and_the_preset_name() -> None:
    bedtime = SessionSettings().with_changes(preset="bedtime")
    assert bedtime.heat_minutes is not None
    changed = bedtime.with_changes(heat="low")
    assert changed.heat_minutes is None and changed.preset is None
    assert changed.duration_min == bedtime.duration_min


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"idle_hz": 5}, "greater than or equal to 10"),  # the supervisor watches at 10 Hz at least
        ({"control_hz": 20, "idle_hz": 25}, "must not exceed control_hz (20)"),
    ],
)
def test_the_idle_rate_is_bounded_and_never_above_the_control_rate(
    values: dict[str, float], reason: str
) -> None:
    with pytest.raises(ValidationError) as err:
        DeviceSettings(**values)
    assert err.value.errors()[0]["loc"] == ("idle_hz",)
    assert reason in str(err.value)
