"""On a Raspberry Pi no session starts before a self-test has passed on the wiring, and the
self-test runs through both GPIO backends' lines and drivers as it does on the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import load_settings
from bridge.service import build, wiring_fingerprint
from device.control.massager import Action, Command, CommandRejectedError, Status
from tests.device.pi.conftest import Board, PiRig
from tests.device.pi.test_session_on_lines import all_low, lines


def commissioned_rig(board: Board, wiring: str = "wiring-1") -> PiRig:
    rig = PiRig(board)
    rig.massager.wiring = wiring
    rig.massager.commissioning_required = True  # as the agent sets it on a Pi backend
    return rig


def run_selftest(rig: PiRig) -> None:
    rig.send(Action.SELFTEST)
    assert rig.run_until(lambda: rig.status is not Status.SELF_TEST, 300)


def test_a_session_waits_for_a_passed_selftest_on_this_wiring(board: Board) -> None:
    rig = commissioned_rig(board)
    with pytest.raises(CommandRejectedError, match="no self-test has passed") as caught:
        rig.send(Action.START)
    assert caught.value.code == "not_commissioned"
    assert lines(rig) == all_low(rig)  # nothing moved

    run_selftest(rig)
    record = rig.massager.selftest_record
    assert record is not None
    assert record["result"] == "passed", record["problems"]
    assert record["wiring"] == "wiring-1"
    assert rig.run_until(lambda: rig.status is Status.IDLE, 10)
    rig.start()  # now it may

    rig.send(Action.STOP)
    assert rig.run_until(lambda: rig.status is Status.IDLE, 20)
    rig.massager.wiring = "wiring-2"  # a line or a sensor moved since
    with pytest.raises(CommandRejectedError, match="wiring or the calibration changed"):
        rig.send(Action.START)


def test_a_failed_selftest_keeps_sessions_refused(board: Board) -> None:
    rig = commissioned_rig(board)
    rig.send(Action.SELFTEST)
    rig.run(5)
    rig.send(Action.STOP)  # aborted: it has not passed
    with pytest.raises(CommandRejectedError, match="the last self-test aborted"):
        rig.send(Action.START)


def test_the_agent_asks_for_a_selftest_on_a_pi_backend_only(tmp_path: Path) -> None:
    for backend, required in (("gpiozero", True), ("rpigpio", True), ("sim", False)):
        settings = load_settings(None, backend=backend, state_dir=str(tmp_path / backend))
        agent = build(settings, host="127.0.0.1", port=1)  # the simulator's parts stand in
        massager = agent.massager
        assert massager.commissioning_required is required
        assert massager.wiring == wiring_fingerprint(settings)


def test_the_wiring_fingerprint_follows_every_line_and_sensor(tmp_path: Path) -> None:
    base = load_settings(None, backend="gpiozero", state_dir=str(tmp_path))
    moved = base.model_copy(
        update={
            "pi": base.pi.model_copy(update={"pins": base.pi.pins.model_copy(update={"pump": 25})})
        }
    )
    assert wiring_fingerprint(base) != wiring_fingerprint(moved)
    assert wiring_fingerprint(base) == wiring_fingerprint(base.model_copy())


def test_uncalibrated_channels_keep_sessions_refused_and_a_calibration_is_applied(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from bridge.store import save_calibration
    from device.calibration import Calibration, ChannelCalibration

    settings = load_settings(None, backend="gpiozero", state_dir=str(tmp_path / "state"))
    massager = build(settings, host="127.0.0.1", port=1).massager
    assert massager.uncalibrated == ["foot", "ankle", "calf", "upper_calf"]
    with pytest.raises(
        CommandRejectedError, match="not calibrated: foot, ankle, calf, upper_calf: run"
    ):
        massager.submit(Command(action=Action.START), 0.0)

    at = datetime(2026, 11, 30, tzinfo=UTC)
    gains = {"foot": 1.1, "ankle": 0.95, "calf": 1.0, "upper_calf": 1.05}
    calibration = Calibration(
        zones={
            z: ChannelCalibration(
                gain=g, zero_mmhg=0.0, reading_mmhg=30 / g, reference_mmhg=30, at=at
            )
            for z, g in gains.items()
        }
    )
    save_calibration(settings.state_dir, calibration)
    agent = build(settings, host="127.0.0.1", port=1)
    assert agent.massager.uncalibrated == []
    assert agent.massager.wiring == wiring_fingerprint(settings, calibration)
    assert agent.massager.wiring != wiring_fingerprint(settings)
    sensors = agent.runner.hardware.pressure
    assert [getattr(s, "gain", 1.0) for s in sensors] == [1.1, 0.95, 1.0, 1.05]
