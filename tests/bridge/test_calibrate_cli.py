"""`legwave calibrate` on the simulator (its gauge is the true pressure): gains kept in the state
directory, a channel far from its curve refused with its likely cause, and the raw view."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.cli import main
from device.store import claim, load_calibration

ZONES = ["foot", "ankle", "calf", "upper_calf"]
WIRING_FAULTS = [
    "inlet_tubes_swapped",
    "sensor_channels_swapped",
    "exhaust_inverted",
    "sensor_dead",
    "divider_inverted",
]
pytestmark = pytest.mark.usefixtures("cli_state_dir")


def test_every_channel_is_calibrated_and_kept(
    cli_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", "--reference", "40"]) == 0
    out = capsys.readouterr().out
    for zone in ZONES:
        assert f"  {zone}: reads " in out
    assert "from the MPX5050's curve, gain" in out
    calibration = load_calibration(cli_state_dir)  # as a restarted agent reads it
    assert set(calibration.zones) == set(ZONES)
    for zone in ZONES:
        c = calibration.zones[zone]
        assert c.gain == pytest.approx(1.0, abs=0.03)
        assert 35 < c.reference_mmhg <= 41
    assert not list(cli_state_dir.glob(".calibration.json.*"))  # written atomically


def test_an_inverted_divider_is_refused_naming_it(
    cli_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", "--reference", "40"]) == 0
    assert main(["calibrate", "--reference", "40", "--fault", "divider_inverted:calf"]) == 1
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.strip().startswith("calf: reads")][-1]
    assert "-50% from the MPX5050's curve, more than 15%" in line
    assert "the divider is wired inverted" in line
    assert "not calibrated: calf" in out
    # the old calibration of a channel that now reads half is void; the others are kept
    assert set(load_calibration(cli_state_dir).zones) == {"foot", "ankle", "upper_calf"}


def test_one_zone_at_a_time(cli_state_dir: Path) -> None:
    assert main(["calibrate", "--zone", "ankle", "--reference", "25"]) == 0
    assert set(load_calibration(cli_state_dir).zones) == {"ankle"}


def test_the_raw_view_shows_every_channel_in_volts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--raw", "--once"]) == 0
    line = capsys.readouterr().out.strip()
    for zone in ZONES:
        assert f"{zone} 0.13" in line  # 0.2 V at 0 kPa, through the 2/3 divider
    assert line.count(" V (") == 4


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--reference", "60"], "--reference: give 5-40 mmHg"),
        (["--zone", "knee"], "--zone: unknown zone 'knee'"),
        (["--backend", "gpiozero", "--fault", "sensor_dead"], "faults are the simulator's only"),
        (["--backend", "gpiozero"], "the reference is a person at a gauge"),
    ],
)
def test_bad_requests_are_refused(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(["calibrate", *args]) == 2
    assert says in capsys.readouterr().err


def test_not_while_an_agent_runs(cli_state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = claim(cli_state_dir)
    try:
        assert main(["calibrate"]) == 2
    finally:
        lock.close()
    assert "Stop the agent first" in capsys.readouterr().err


@pytest.mark.untraced
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fault=st.sampled_from(WIRING_FAULTS), zone=st.sampled_from(ZONES), seed=st.integers(0, 999))
def test_any_single_wiring_fault_is_caught_before_a_session_could_start(
    fault: str, zone: str, seed: int, cli_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ["--fault", f"{fault}:{zone}", "--seed", str(seed)]
    calibrated = main(["calibrate", "--reference", "30", *spec])
    tested = main(["selftest", *spec])
    out = capsys.readouterr().out
    assert (calibrated, tested) != (0, 0), out  # one of the two refuses it, naming the zone
    not_calibrated = [x for x in out.splitlines() if x.startswith("not calibrated: ")]
    found = out.split("problems:")[-1] if "problems:" in out else ""
    assert (not_calibrated and zone in not_calibrated[0]) or f"- {zone}: " in found, out
