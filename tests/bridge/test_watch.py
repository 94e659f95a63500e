from __future__ import annotations

from typing import Any

from bridge.watch import render

STATE: dict[str, Any] = {
    "status": "running",
    "phase": "holding",
    "preset": "recovery",
    "mode": "wave",
    "intensity": 3,
    "heat": "low",
    "vibration": "off",
    "duration_min": 20,
    "progress": 25,
    "remaining_s": 900,
    "pressure_mmhg": {"foot": 40.0, "calf": 0.0},
    "target_mmhg": {"foot": 40.0, "calf": None},
    "heater_c": 37.5,
    "fault": None,
}


def test_a_frame_shows_status_progress_zones_heater() -> None:
    screen = render(STATE, None, [], online=True)
    assert "legwave · running · holding · online" in screen
    assert "25%" in screen and "15:00 left of 20:00" in screen
    foot = next(line for line in screen.splitlines() if line.startswith("foot"))
    assert "40.0 mmHg → " in foot and foot.count("█") == 12  # 40 of 100 mmHg on a 30-cell bar
    assert "vent" in next(line for line in screen.splitlines() if line.startswith("calf"))
    assert "37.5 °C" in screen


def test_telemetry_wins_over_the_state_and_faults_show() -> None:
    telemetry = {"pressure_mmhg": {"foot": 12.5}, "target_mmhg": {"foot": 40.0}, "heater_c": 30.0}
    screen = render(
        {**STATE, "fault": "overpressure", "fault_message": "zone 0 at 56"},
        telemetry,
        ["12:00:00 fault_raised overpressure"],
        online=False,
    )
    assert "12.5 mmHg" in screen and "OFFLINE" in screen
    assert "FAULT overpressure: zone 0 at 56" in screen
    assert "fault_raised overpressure" in screen


def test_before_any_state() -> None:
    assert "waiting" in render(None, None, [], online=None)
