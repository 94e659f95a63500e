"""`legwave doctor` on a folder laid out like a Pi, with the backends on their stand-ins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import AgentSettings, load_settings
from bridge.doctor import Check, Host, run_checks
from bridge.doctor import Doctor as _Doctor
from bridge.service import wiring_fingerprint
from device.backends.plant.model import Plant
from device.backends.sim import SimulatedMassager
from device.calibration import Calibration, ChannelCalibration
from device.store import Memory, Store, save_calibration
from tests.device.pi.conftest import PI4, PI5, gpiozero_board


def pi_root(tmp_path: Path, model: str = PI4, *, i2c: bool = True) -> Path:
    root = tmp_path / "root"
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(model.encode() + b"\0")
    (root / "dev").mkdir()
    (root / "dev/gpiochip0").touch()
    if i2c:
        (root / "dev/i2c-1").touch()
    return root


def settings(tmp_path: Path, **overrides: Any) -> AgentSettings:
    pi = {"zero": {"settle_s": 0, "average_s": 0.01}, **overrides.pop("pi", {})}
    return load_settings(None, state_dir=tmp_path / "state", pi=pi, **overrides)


def stand_ins() -> tuple[Any, Plant]:
    board = gpiozero_board()
    sim = SimulatedMassager(zones=4, heaters=2, clock=lambda: 0.0)
    from device.backends.pi.config import PiConfig

    return board, Plant(sim=sim, config=PiConfig(), driven=board.driven)


def host(root: Path, **kwargs: Any) -> Host:
    defaults: dict[str, Any] = {
        "find_module": lambda name: True,
        "version_of": lambda name: {"gpiozero": "2.0.1", "lgpio": "0.2.2.0"}.get(name),
        "groups": lambda: {"gpio", "i2c"},
    }
    return Host(root=root, **{**defaults, **kwargs})


def verdicts(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.verdict for c in checks}


def by_name(checks: list[Check], name: str) -> Check:
    return next(c for c in checks if c.name == name)


def test_off_a_pi_the_board_fails_and_the_rest_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    assert run_checks(settings(tmp_path), host=host(root)) == 1
    out = capsys.readouterr().out
    assert "FAIL  board" in out and "use backend sim here" in out
    assert "SKIP  sensors" in out
    assert "FAIL  calibration  not calibrated: foot, ankle, calf, upper_calf" in out
    assert "fix: legwave calibrate" in out
    assert "FAIL  self-test    never run" in out
    assert out.strip().endswith("3 problem(s)")


def commission(config: AgentSettings, *, result: str = "passed") -> Calibration:
    """A calibration and a self-test record in the state directory, as the commands leave them."""
    at = datetime(2026, 11, 30, tzinfo=UTC)
    calibration = Calibration(
        zones={
            z: ChannelCalibration(gain=1.02, zero=0.1, reading=29.4, reference_mmhg=30.0, at=at)
            for z in config.device.zones
        }
    )
    save_calibration(config.state_dir, calibration)
    record = {
        "result": result,
        "finished_at": at.isoformat(),
        "problems": [] if result == "passed" else ["calf: the inlet tubes of calf and ..."],
        "wiring": wiring_fingerprint(
            config.model_copy(update={"backend": "gpiozero"}), calibration
        ),
    }
    Store(config.state_dir).save(Memory(selftest=record))
    return calibration


def test_calibration_and_selftest_are_shown(tmp_path: Path) -> None:
    config = settings(tmp_path)
    root = tmp_path / "empty"
    root.mkdir()
    commission(config, result="failed")
    checks = _Doctor(config, backend="gpiozero", host=host(root)).run()
    assert by_name(checks, "calibration").detail.startswith("foot -2.0%, ankle -2.0%")
    assert by_name(checks, "calibration").verdict == "OK"
    selftest = by_name(checks, "self-test")
    assert selftest.verdict == "FAIL"
    assert "failed (calf: the inlet tubes" in selftest.detail
    moved = config.model_copy(
        update={
            "pi": config.pi.model_copy(
                update={"pins": config.pi.pins.model_copy(update={"pump": 25})}
            )
        }
    )
    checks = _Doctor(moved, backend="gpiozero", host=host(root)).run()
    assert (
        "the wiring or calibration changed since 2026-11-30" in by_name(checks, "self-test").detail
    )


def test_a_healthy_pi_passes_every_check(tmp_path: Path) -> None:
    board, plant = stand_ins()
    commission(settings(tmp_path))
    checks = _Doctor(
        settings(tmp_path),
        backend="gpiozero",
        host=host(
            pi_root(tmp_path),
            open_gpio=lambda name, path: board.gpio,
            open_i2c=lambda bus: plant.bus,
        ),
    ).run()
    assert set(verdicts(checks).values()) == {"OK"}, checks
    sensors = by_name(checks, "sensors").detail
    assert "foot +0." in sensors or "foot -0." in sensors
    assert "°C" in sensors
    assert board.driven(18) == 0.0  # and everything was released low again
    assert by_name(checks, "ads1115 0x48").verdict == "OK"


def test_missing_libraries_are_named_with_the_install_command(tmp_path: Path) -> None:
    checks = _Doctor(
        settings(tmp_path),
        backend="gpiozero",
        host=host(pi_root(tmp_path), find_module=lambda name: name != "lgpio"),
    ).run()
    library = by_name(checks, "library")
    assert (library.verdict, library.detail) == ("FAIL", "missing: lgpio")
    assert "legwave[pi]" in library.fix
    assert by_name(checks, "sensors").verdict == "SKIP"


def test_rpi_gpio_on_a_pi_5_is_caught_before_it_runs(tmp_path: Path) -> None:
    checks = _Doctor(
        settings(tmp_path),
        backend="rpigpio",
        host=host(
            pi_root(tmp_path, PI5),
            version_of=lambda name: "0.7.1" if name == "RPi.GPIO" else None,
        ),
    ).run()
    library = by_name(checks, "library")
    assert library.verdict == "FAIL"
    assert "does not support the Pi 5" in library.detail
    assert "rpi-lgpio" in library.fix


def test_no_access_to_the_gpio_chip_says_which_group(tmp_path: Path) -> None:
    checks = _Doctor(
        settings(tmp_path),
        backend="gpiozero",
        host=host(pi_root(tmp_path), can_open=lambda p: False, groups=lambda: {"users"}),
    ).run()
    access = by_name(checks, "gpio access")
    assert access.verdict == "FAIL"
    assert "usermod -aG gpio" in access.fix


def test_i2c_disabled_and_a_silent_adc_are_reported(tmp_path: Path) -> None:
    checks = _Doctor(
        settings(tmp_path), backend="gpiozero", host=host(pi_root(tmp_path, i2c=False))
    ).run()
    assert by_name(checks, "i2c-1").verdict == "FAIL"
    assert "raspi-config" in by_name(checks, "i2c-1").fix

    board, plant = stand_ins()
    del plant.bus.config[0x49]  # the NTC's ADS1115 does not answer
    checks = _Doctor(
        settings(tmp_path),
        backend="gpiozero",
        host=host(
            pi_root(tmp_path / "b"),
            open_gpio=lambda name, path: board.gpio,
            open_i2c=lambda bus: plant.bus,
        ),
    ).run()
    silent = by_name(checks, "ads1115 0x49")
    assert silent.verdict == "FAIL"
    assert "ADDR pin" in silent.fix
    assert by_name(checks, "ads1115 0x48").verdict == "OK"


def test_ds18b20_sensors_are_read_from_the_1_wire_folder(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    w1 = root / "sys/bus/w1/devices"
    good, missing = "28-0316a279c4ff", "28-0316a279c500"
    (w1 / good).mkdir(parents=True)
    (w1 / good / "w1_slave").write_text(
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
    )
    config = settings(
        tmp_path,
        pi={"temperature": {"kind": "ds18b20", "sensors": [good, missing]}},
    )
    checks = _Doctor(config, backend="gpiozero", host=host(root)).run()
    assert by_name(checks, f"ds18b20 {good}").detail == "23.1 °C"
    lost = by_name(checks, f"ds18b20 {missing}")
    assert lost.verdict == "FAIL" and good in lost.fix


def test_an_unreachable_broker_fails(tmp_path: Path) -> None:
    from bridge.broker import free_port

    config = settings(
        tmp_path, mqtt={"host": "127.0.0.1", "port": free_port(), "connect_timeout_s": 2}
    )
    checks = _Doctor(config, backend="gpiozero", host=host(tmp_path)).run()
    broker = by_name(checks, "broker")
    assert broker.verdict == "FAIL"
    assert "mqtt.host" in broker.fix
