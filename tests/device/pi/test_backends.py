"""Opening the backends: clear errors off a Pi, on a Pi 5 with RPi.GPIO, without libraries;
the RPi.GPIO stand-in's own rules; and the Pi hardware's start-up checks."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.backends import HardwareUnavailableError, open_backend
from device.backends.pi import (
    CalibrationError,
    PiHardware,
    open_gpio,
    open_i2c,
)
from device.backends.pi.board import board_model, is_pi5_family
from device.backends.pi.config import PiConfig
from device.backends.pi.gpiozero_gpio import GpiozeroGpio
from device.backends.pi.rpigpio_gpio import PI5_HINT, RpiGpio
from device.backends.sim import FaultInjection, SimFault
from device.settings import DeviceSettings
from tests.device.pi.conftest import FAST_ZERO, PI4, PI5, Board, PiRig, install_rpi_gpio, model_file
from tests.device.pi.fake_rpigpio import FakeRPiGPIO


@pytest.mark.parametrize(
    ("model", "pi5"),
    [
        ("Raspberry Pi 5 Model B Rev 1.0", True),
        ("Raspberry Pi 500 Rev 1.0", True),
        ("Raspberry Pi Compute Module 5 Rev 1.0", True),
        ("Raspberry Pi 4 Model B Rev 1.4", False),
        ("Raspberry Pi Zero 2 W Rev 1.0", False),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", False),
    ],
)
def test_pi5_family_detection(model: str, pi5: bool) -> None:
    assert is_pi5_family(model) is pi5


def test_the_model_file_is_read_without_its_nul(tmp_path: Path) -> None:
    assert board_model(model_file(tmp_path, PI4)) == PI4
    assert board_model(tmp_path / "absent") is None


@pytest.mark.parametrize("backend", ["gpiozero", "rpigpio"])
def test_off_a_pi_both_backends_say_so(backend: str, tmp_path: Path) -> None:
    not_a_pi = tmp_path / "model"
    not_a_pi.write_bytes(b"QEMU Virtual Machine\0")
    with pytest.raises(HardwareUnavailableError, match=r"needs a Raspberry Pi.*--backend sim"):
        open_gpio(backend, model_path=not_a_pi)
    with pytest.raises(HardwareUnavailableError, match="no board model"):
        open_gpio(backend, model_path=tmp_path / "absent")


def test_without_gpiozero_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiozero", None)  # import fails
    with pytest.raises(HardwareUnavailableError, match=r"pip install 'legwave\[pi\]'"):
        GpiozeroGpio()


def test_without_rpi_gpio_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(HardwareUnavailableError, match=r"legwave\[pi\].*rpi-lgpio"):
        RpiGpio.open(model_path=model_file(tmp_path, PI4))


def test_rpi_gpio_on_a_pi_5_points_to_rpi_lgpio(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_rpi_gpio(monkeypatch, FakeRPiGPIO())  # the original module: no lgpio inside
    with pytest.raises(HardwareUnavailableError) as caught:
        RpiGpio.open(model_path=model_file(tmp_path, PI5))
    assert str(caught.value) == PI5_HINT
    assert "RPi.GPIO does not support the Pi 5: use the rpi-lgpio package" in PI5_HINT


def test_rpi_lgpio_on_a_pi_5_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = FakeRPiGPIO()
    module.lgpio = object()  # type: ignore[attr-defined]  # rpi-lgpio is built on lgpio
    install_rpi_gpio(monkeypatch, module)
    gpio = RpiGpio.open(model_path=model_file(tmp_path, PI5))
    gpio.output(17).set(True)
    assert module.driven(17) == 1.0
    gpio.close()


def test_the_soc_error_of_rpi_gpio_on_a_pi_5_is_translated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = FakeRPiGPIO()

    def setup(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Cannot determine SOC peripheral base address")

    module.setup = setup  # type: ignore[method-assign]
    install_rpi_gpio(monkeypatch, module)
    gpio = RpiGpio.open(
        model_path=model_file(tmp_path, "Raspberry Pi 600 Rev 1.0")
    )  # unknown to us
    with pytest.raises(HardwareUnavailableError, match="rpi-lgpio"):
        gpio.output(17)


def test_rpi_gpio_refusing_to_import_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Refusing:
        def find_spec(self, name: str, *args: object) -> None:
            if name == "RPi.GPIO":
                raise RuntimeError("This module can only be run on a Raspberry Pi!")

    package = types.ModuleType("RPi")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "RPi", package)
    monkeypatch.delitem(sys.modules, "RPi.GPIO", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Refusing(), *sys.meta_path])
    with pytest.raises(HardwareUnavailableError, match="can only be run on a Raspberry Pi"):
        RpiGpio.open(model_path=model_file(tmp_path, PI4))


def test_a_line_in_use_elsewhere_is_named() -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    first = GpiozeroGpio.open(pin_factory=factory)
    first.output(17)
    with pytest.raises(HardwareUnavailableError, match="GPIO17 is already in use"):
        GpiozeroGpio.open(pin_factory=factory).output(17)


# -- the stand-in must be as strict as the real module, or passing it proves nothing -------
def test_the_stand_in_refuses_what_rpi_gpio_refuses() -> None:
    g = FakeRPiGPIO()
    with pytest.raises(RuntimeError, match="Please set pin numbering mode"):
        g.setup(17, g.OUT)
    g.setmode(g.BCM)
    with pytest.raises(ValueError, match="A different mode has already been set"):
        g.setmode(g.BOARD)
    with pytest.raises(ValueError, match="invalid on a Raspberry Pi"):
        g.setup(28, g.OUT)
    with pytest.raises(RuntimeError, match="has not been set up as an OUTPUT"):
        g.output(17, 1)
    with pytest.raises(RuntimeError, match="You must setup"):
        g.input(17)
    with pytest.raises(ValueError, match="not valid for outputs"):
        g.setup(17, g.OUT, pull_up_down=g.PUD_DOWN)
    with pytest.raises(RuntimeError, match="as an output first"):
        g.PWM(18, 100)
    g.setup(18, g.OUT)
    with pytest.raises(ValueError, match=r"frequency must be greater than 0\.0"):
        g.PWM(18, 0)
    pwm = g.PWM(18, 100)
    with pytest.raises(RuntimeError, match="A PWM object already exists"):
        g.PWM(18, 100)
    with pytest.raises(ValueError, match=r"dutycycle must have a value from 0\.0 to 100\.0"):
        pwm.start(101)
    pwm.start(50)
    assert g.driven(18) == 0.5
    g.cleanup([18])
    assert g.driven(18) == 0.0  # released: held low by the pull-down


def test_the_rpigpio_backend_claims_lines_low_and_releases_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeRPiGPIO()
    install_rpi_gpio(monkeypatch, fake)
    gpio = RpiGpio.open(model_path=model_file(tmp_path, PI4))
    pump = gpio.pwm(18, 1000)
    valve = gpio.output(17)
    gpio.input(25)
    assert fake.calls[:2] == ["setmode(11)", "setup(18, OUT)"]
    assert not fake.warnings
    pump.set_duty(0.4)
    valve.set(True)
    assert (fake.driven(18), fake.driven(17)) == (0.4, 1.0)
    gpio.close()
    assert fake.writes[-2:] == [(18, 0.0), (17, 0.0)]  # written low, then released
    assert fake.calls[-1] == "cleanup([18, 17, 25])"
    assert fake.direction == {}


# -- the Pi hardware's own start-up checks ----------------------------------------------------
def test_a_wiring_that_does_not_fit_the_device_is_refused(board: Board) -> None:
    device = DeviceSettings(zones=["foot", "calf", "thigh"])
    with pytest.raises(HardwareUnavailableError, match=r"pins\.inlets: 4 lines for 3 zones"):
        PiHardware(config=PiConfig(), device=device, gpio=board.gpio)


def test_a_sensor_offset_too_large_to_be_a_zero_is_a_calibration_error(board: Board) -> None:
    # the ankle sensor reads 40 mmHg high from the start: a fault, never a zero offset
    with pytest.raises(CalibrationError, match=r"zone ankle reads 4\d\.\d mmHg with every exhaust"):
        PiRig(board, faults=[FaultInjection(SimFault.SENSOR_OFFSET, at_s=0.0, target=1)])
    assert board.driven(PiConfig().pins.pump) == 0.0


def test_a_sensor_that_never_answers_is_a_calibration_error(board: Board) -> None:
    config = PiConfig(zero=FAST_ZERO)

    class DeadBus:
        def write_i2c_block_data(self, *args: object) -> None:
            raise OSError(121, "Remote I/O error")

        def read_i2c_block_data(self, *args: object) -> list[int]:
            raise OSError(121, "Remote I/O error")

    hw = PiHardware(
        config=config, device=DeviceSettings(), gpio=board.gpio, i2c=lambda bus: DeadBus()
    )
    with pytest.raises(CalibrationError, match="zone foot: no pressure reading"):
        hw.calibrate_zero(sleep=lambda s: None)
    hw.close()


def test_without_smbus2_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smbus2", None)
    with pytest.raises(HardwareUnavailableError, match=r"smbus2 is not installed.*legwave\[pi\]"):
        open_i2c(1)


def test_the_simulator_is_a_backend_like_the_others() -> None:
    backend = open_backend("sim", device=DeviceSettings(), clock=lambda: 0.0)
    backend.start()
    backend.hardware.pump.set_duty(1.0)
    backend.close()
    assert backend.hardware.read().pressure[0].value < 5.0
    assert backend.sim.physics.pump_duty == 0.0  # type: ignore[attr-defined]  # closed = safe
