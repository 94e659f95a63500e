"""`legwave simulate` through its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["simulate", *args, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.untraced
def test_recovery_preset_completes_within_limits_and_vents(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = run_json(capsys, "--preset", "recovery")
    assert out["end_reason"] == "completed"
    assert 1200 <= out["duration_s"] <= 1260
    assert out["vented"] is True
    assert out["faults"] == []
    assert out["cycles"] >= 18
    for zone, peak in out["max_pressure_mmhg"].items():
        assert peak <= out["max_target_mmhg"][zone] + 15.0
    assert out["max_target_mmhg"] == {"foot": 40.0, "ankle": 35.0, "calf": 30.0, "upper_calf": 25.0}
    assert out["overshoot_mmhg"] < 5.0
    for key in ("wall_s", "max_heater_c", "session_id", "settings", "seed"):
        assert key in out


@pytest.mark.untraced
def test_options_override_the_preset(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(
        capsys, "--preset", "bedtime", "--duration-min", "5", "--intensity", "1", "--heat", "off"
    )
    settings = out["settings"]
    assert (
        settings["mode"],
        settings["duration_min"],
        settings["intensity"],
        settings["heat"],
    ) == (
        "gentle",
        5,
        1,
        "off",
    )
    assert 300 <= out["duration_s"] <= 330


def test_an_injected_fault_is_reported_with_its_time(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "--duration-min", "5", "--fault", "sensor_offset@90", "--seed", "3")
    assert out["end_reason"] == "fault:sensor_fault"
    assert out["faults"][0]["code"] == "sensor_fault"
    assert 90.0 <= out["faults"][0]["at_s"] <= 91.0
    assert out["injected"] == [{"fault": "sensor_offset", "at_s": 90.0, "target": "foot"}]
    assert out["vented"] is True


@pytest.mark.untraced
def test_the_same_seed_gives_the_same_session(capsys: pytest.CaptureFixture[str]) -> None:
    a = run_json(capsys, "--duration-min", "5", "--seed", "9")
    b = run_json(capsys, "--duration-min", "5", "--seed", "9")
    for volatile in ("wall_s", "speedup"):
        a.pop(volatile), b.pop(volatile)
    assert a == b


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--intensity", "9"], "--intensity: Input should be less than or equal to 7"),
        (["--duration-min", "90"], "--duration-min: Input should be less than or equal to 60"),
        (["--zone-boost", "knee"], "zone_boost: unknown zone 'knee'"),
        (["--fault", "gremlins"], "fault: unknown fault 'gremlins'"),
        (["--fault", "slow_leak:knee@3"], "unknown zone 'knee'"),
    ],
)
def test_bad_options_fail_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_choice_is_refused_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--mode", "shake"])
    assert exit_.value.code == 2
    assert "invalid choice: 'shake'" in capsys.readouterr().err


@pytest.mark.untraced
def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "session.png"
    assert (
        main(["simulate", "--preset", "warm_up", "--duration-min", "5", "--plot", str(path)]) == 0
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a real picture, not an empty canvas
    out = capsys.readouterr().out
    assert "completed" in out and str(path) in out


def test_the_first_plot_on_a_machine_prints_nothing_of_matplotlib(tmp_path: Path) -> None:
    """A fresh matplotlib builds its font cache and logs it; a user sees only the summary."""
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "HOME": str(tmp_path)}
    path = tmp_path / "session.png"
    cmd = [sys.executable, "-m", "bridge.cli", "-v", "simulate", "--duration-min", "5"]
    done = subprocess.run(
        [*cmd, "--plot", str(path)], env=env, capture_output=True, text=True, check=True
    )
    assert (tmp_path / "mpl").exists()  # the cache was built in this run
    assert "matplotlib" not in done.stderr, done.stderr
    assert path.exists()


def test_readable_summary_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--duration-min", "5", "--fault", "pump_stall@60"]) == 0
    out = capsys.readouterr().out
    assert "fault:inflate_timeout" in out
    assert "injected   pump_stall at 60 s" in out
    assert "sleeves    vented" in out


def test_the_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("legwave ")
