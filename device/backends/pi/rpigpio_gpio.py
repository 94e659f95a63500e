"""GPIO through the RPi.GPIO API: RPi.GPIO on a Pi 4 and older, rpi-lgpio on a Pi 5."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from device.backends import HardwareUnavailableError
from device.backends.pi.board import MODEL_PATH, is_pi5_family, require_pi

PI5_HINT = (
    "RPi.GPIO does not support the Pi 5: use the rpi-lgpio package, which provides the same "
    "API (pip uninstall RPi.GPIO && pip install rpi-lgpio), or --backend gpiozero"
)


def _is_rpi_lgpio(module: Any) -> bool:
    """rpi-lgpio installs itself as RPi.GPIO; it is the one built on lgpio."""
    return getattr(module, "lgpio", None) is not None


class RpiGpio:
    """GPIO lines through an RPi.GPIO-compatible module, BCM numbering.

    Args:
        module: the imported ``RPi.GPIO`` module.
    """

    name = "rpigpio"

    def __init__(self, module: Any) -> None:
        self._gpio = module
        self._outputs: list[int] = []
        self._pwms: list[tuple[int, Any]] = []
        self._inputs: list[int] = []
        module.setwarnings(False)
        module.setmode(module.BCM)

    @classmethod
    def open(cls, *, model_path: Path = MODEL_PATH) -> RpiGpio:
        """Open the board's GPIO; raises `HardwareUnavailableError` with what to do."""
        model = require_pi(cls.name, model_path)
        try:
            module = importlib.import_module("RPi.GPIO")
        except ImportError:
            raise HardwareUnavailableError(
                "RPi.GPIO is not installed: pip install 'legwave[pi]' (it brings rpi-lgpio, "
                "which provides RPi.GPIO on every Pi)"
            ) from None
        except RuntimeError as exc:  # RPi.GPIO's own "can only be run on a Raspberry Pi"
            raise HardwareUnavailableError(f"RPi.GPIO cannot run on {model!r}: {exc}") from None
        if is_pi5_family(model) and not _is_rpi_lgpio(module):
            raise HardwareUnavailableError(PI5_HINT)
        return cls(module)

    def _setup_output(self, pin: int) -> None:
        g = self._gpio
        try:
            g.setup(pin, g.OUT, initial=g.LOW)
        except RuntimeError as exc:
            if "SOC peripheral base address" in str(exc):
                raise HardwareUnavailableError(PI5_HINT) from None
            raise

    def output(self, pin: int) -> _Output:
        """Claim `pin` as an output, low."""
        self._setup_output(pin)
        self._outputs.append(pin)
        return _Output(self._gpio, pin)

    def pwm(self, pin: int, frequency_hz: float) -> _Pwm:
        """Claim `pin` as a software-PWM output at duty 0."""
        self._setup_output(pin)
        self._outputs.append(pin)
        pwm = self._gpio.PWM(pin, frequency_hz)
        pwm.start(0.0)
        self._pwms.append((pin, pwm))
        return _Pwm(pwm)

    def input(self, pin: int) -> _Input:
        """Claim `pin` as an input without pull."""
        g = self._gpio
        g.setup(pin, g.IN, pull_up_down=g.PUD_OFF)
        self._inputs.append(pin)
        return _Input(g, pin)

    def close(self) -> None:
        """Stop every PWM, drive every output low, then release the lines (each step tried)."""
        g = self._gpio
        errors: list[Exception] = []
        for _pin, pwm in self._pwms:
            try:
                pwm.ChangeDutyCycle(0.0)
                pwm.stop()
            except Exception as exc:
                errors.append(exc)
        for pin in self._outputs:
            try:
                g.output(pin, g.LOW)
            except Exception as exc:
                errors.append(exc)
        claimed = [*self._outputs, *self._inputs]
        if claimed:
            try:
                g.cleanup(claimed)
            except Exception as exc:
                errors.append(exc)
        self._pwms.clear()
        self._outputs.clear()
        self._inputs.clear()
        if errors:
            raise ExceptionGroup("could not release every GPIO line cleanly", errors)


class _Output:
    def __init__(self, module: Any, pin: int) -> None:
        self._gpio = module
        self._pin = pin

    def set(self, high: bool) -> None:
        self._gpio.output(self._pin, self._gpio.HIGH if high else self._gpio.LOW)


class _Pwm:
    def __init__(self, pwm: Any) -> None:
        self._pwm = pwm

    def set_duty(self, duty: float) -> None:
        self._pwm.ChangeDutyCycle(min(max(duty, 0.0), 1.0) * 100.0)


class _Input:
    def __init__(self, module: Any, pin: int) -> None:
        self._gpio = module
        self._pin = pin

    def read(self) -> bool:
        return bool(self._gpio.input(self._pin))
