"""On a Raspberry Pi no session starts before a self-test has passed on the wiring, and the
self-test runs through both GPIO backends' lines and drivers as it does on the simulator."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any

import pytest

from bridge.calibrate import Bench, calibrate
from bridge.config import load_settings
from bridge.service import build, refuse_unscaled, wiring_fingerprint
from device.backends import HardwareUnavailableError
from device.backends.pi import PiHardware
from device.backends.pi.config import Hx710bPressure, PiConfig
from device.backends.plant.model import BOARD_COUNTS_PER_MMHG, Plant
from device.backends.sim import SimulatedMassager
from device.calibration import Calibration
from device.control.massager import Action, Command, CommandRejectedError, Status
from device.runner import VirtualClock
from device.settings import DeviceSettings
from tests.device.pi.conftest import FAST_ZERO, Board, PiRig, gpiozero_board
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

    from device.calibration import Calibration, ChannelCalibration
    from device.store import save_calibration

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
            z: ChannelCalibration(gain=g, zero=0.0, reading=30 / g, reference_mmhg=30, at=at)
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


def hx710b_bench(board: Board, **pi_options: Any) -> tuple[Bench, SimulatedMassager, PiHardware]:
    """An HX710B board with no counts per mmHg written down, on a stand-in, as calibrate sees it."""
    config = PiConfig(pressure=Hx710bPressure(), zero=FAST_ZERO)
    clock = VirtualClock()
    sim = SimulatedMassager(zones=4, heaters=2, clock=clock.now)
    plant = Plant(sim=sim, config=config, driven=board.driven)
    chips = plant.hx710b
    assert chips is not None
    p = config.pressure
    assert isinstance(p, Hx710bPressure)
    for i, pin in enumerate(p.dout):
        board.feed(pin, functools.partial(chips.level, i))
    board.listen(p.sck, chips.clock)
    pi = PiHardware(
        config=config,
        device=DeviceSettings(),
        gpio=board.gpio,
        i2c=lambda bus: plant.bus,
        clock=clock.now,
        sleep=lambda s: chips.convert(),
        pulse_clock_ns=itertools.count(0, 1_000).__next__,
        **pi_options,
    )
    pi.calibrate_zero(sleep=lambda s: None)

    def tick() -> float:
        clock.t += 0.02
        plant.sync()
        pi.pressure.poll()
        pi.temperature.poll()
        return clock.t

    return Bench(pi.hardware, tick=tick, gauge=None, heaters=2), sim, pi


@pytest.mark.untraced
def test_an_hx710b_board_is_calibrated_in_its_own_counts(board: Board) -> None:
    bench, sim, pi = hx710b_bench(board, raw_counts=True)
    assert pi.unscaled == [0, 1, 2, 3]  # it reads counts
    zones = list(DeviceSettings().zones)

    def reached() -> bool:  # a person watching the gauge presses Enter at 30 mmHg
        return max(z.pressure for z in sim.physics.zones) >= 30.0

    def ask(reference: float) -> float:  # … and types what it reads once held
        return max(z.pressure for z in sim.physics.zones)

    calibration, problems = calibrate(
        bench,
        zones,
        zones,
        30.0,
        sensor="HX710B board",
        previous=Calibration(),
        say=lambda line: None,
        person=(reached, ask),
        counts=True,
    )
    assert problems == []
    for zone in zones:
        scale = calibration.zones[zone].counts_per_mmhg
        assert scale == pytest.approx(BOARD_COUNTS_PER_MMHG, rel=0.03), zone
    pi.close()

    # with the scales found, the agent's backend reads mmHg again; without, it refuses to run
    board2 = gpiozero_board()
    _, _, scaled = hx710b_bench(board2, counts_per_mmhg=calibration.counts(zones))
    assert scaled.unscaled == []
    scaled.close()
    board3 = gpiozero_board()
    _, _, unscaled = hx710b_bench(board3)
    settings = load_settings(None, backend="gpiozero")
    with pytest.raises(HardwareUnavailableError, match="foot, ankle, calf, upper_calf have no "):
        refuse_unscaled(unscaled, settings)
    unscaled.close()
