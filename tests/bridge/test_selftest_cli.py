"""`legwave selftest` on the simulator, as a maker runs it: the table, the exit code, the record
kept for the agent, and every wiring fault named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import load_settings
from bridge.service import wiring_fingerprint
from device.store import Store, claim

pytestmark = pytest.mark.usefixtures("cli_state_dir")


def test_a_sound_simulator_passes_and_the_record_is_kept(
    cli_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["selftest"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("legwave self-test (sim backend): passed in ")
    for zone in ("foot", "ankle", "calf", "upper_calf"):
        line = next(x for x in out.splitlines() if x.strip().startswith(zone))
        assert line.rstrip().endswith("ok") and "mmHg/s" in line
    assert "heater 0" in out and "the supply switch cuts it" in out
    record = Store(cli_state_dir).load().selftest
    assert record is not None
    assert record["result"] == "passed"
    assert record["wiring"] == wiring_fingerprint(load_settings(None))


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("inlet_tubes_swapped:ankle", "the inlet tubes of ankle and calf are swapped"),
        ("sensor_channels_swapped:foot", "sensor channels (or sensor tubes) of foot and ankle"),
        ("exhaust_inverted:calf", "calf: fills only while its exhaust is told to open"),
        ("sensor_dead:upper_calf", "upper_calf's sensor channel is dead"),
    ],
)
def test_each_wiring_fault_fails_it_with_its_name(
    fault: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["selftest", "--fault", fault]) == 1
    out = capsys.readouterr().out
    assert ": failed in " in out.splitlines()[0]
    assert "problems:" in out and says in out


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--json", "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["result"] == "passed"
    assert set(report["zones"]) == {"foot", "ankle", "calf", "upper_calf"}
    assert report["finished_at"]


def test_faults_are_the_simulators_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--backend", "gpiozero", "--fault", "sensor_dead"]) == 2
    assert "--fault: faults are the simulator's only" in capsys.readouterr().err


def test_an_unknown_fault_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--fault", "tubes_crossed"]) == 2
    assert "unknown fault 'tubes_crossed'" in capsys.readouterr().err


def test_with_an_agent_on_the_state_directory_it_points_to_the_command(
    cli_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = claim(cli_state_dir)  # as a running agent holds it
    try:
        assert main(["selftest"]) == 2
    finally:
        lock.close()
    err = capsys.readouterr().err
    assert "another legwave agent" in err and "legwave ctl selftest" in err
