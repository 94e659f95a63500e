"""GPIO through gpiozero: lgpio on every Pi (the Pi 5 included); `MockFactory` in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from device.backends import HardwareUnavailableError
from device.backends.pi.board import MODEL_PATH, require_pi

INSTALL_HINT = "install the Pi extras: pip install 'legwave[pi]'"


class GpiozeroGpio:
    """GPIO lines as gpiozero devices.

    Args:
        pin_factory: a gpiozero pin factory (``MockFactory`` in tests); None lets gpiozero
            choose (lgpio first).
    """

    name = "gpiozero"

    def __init__(self, *, pin_factory: Any = None) -> None:
        try:
            import gpiozero
        except ImportError:
            raise HardwareUnavailableError(f"gpiozero is not installed: {INSTALL_HINT}") from None
        self._gpiozero = gpiozero
        self._factory = pin_factory
        self._outputs: list[Any] = []
        self._inputs: list[Any] = []

    @classmethod
    def open(cls, *, model_path: Path = MODEL_PATH, pin_factory: Any = None) -> GpiozeroGpio:
        """Open the board's GPIO; raises `HardwareUnavailableError` off a Pi."""
        gpio = cls(pin_factory=pin_factory)
        if pin_factory is None:
            require_pi(cls.name, model_path)
        return gpio

    def _make(self, kind: str, pin: int, **kwargs: Any) -> Any:
        exc_mod = self._gpiozero.exc
        try:
            return getattr(self._gpiozero, kind)(pin, pin_factory=self._factory, **kwargs)
        except exc_mod.BadPinFactory as exc:
            raise HardwareUnavailableError(
                f"gpiozero found no working pin library ({exc}): {INSTALL_HINT} (it brings lgpio)"
            ) from None
        except exc_mod.GPIOPinInUse:
            raise HardwareUnavailableError(
                f"GPIO{pin} is already in use (another legwave, or a second part on that line)"
            ) from None

    def output(self, pin: int) -> _Output:
        """Claim `pin` as an output, low."""
        device = self._make("DigitalOutputDevice", pin, initial_value=False)
        self._outputs.append(device)
        return _Output(device)

    def pwm(self, pin: int, frequency_hz: float) -> _Pwm:
        """Claim `pin` as a PWM output at duty 0."""
        device = self._make(
            "PWMOutputDevice", pin, initial_value=0.0, frequency=round(frequency_hz)
        )
        self._outputs.append(device)
        return _Pwm(device)

    def input(self, pin: int) -> _Input:
        """Claim `pin` as an input without pull (the sensor drives it)."""
        device = self._make("DigitalInputDevice", pin, pull_up=None, active_state=True)
        self._inputs.append(device)
        return _Input(device)

    def close(self) -> None:
        """Drive every output low, then release every line (each step tried)."""
        errors: list[Exception] = []
        for device in self._outputs:
            try:
                device.value = 0
            except Exception as exc:
                errors.append(exc)
        for device in [*self._outputs, *self._inputs]:
            try:
                device.close()
            except Exception as exc:
                errors.append(exc)
        self._outputs.clear()
        self._inputs.clear()
        if errors:
            raise ExceptionGroup("could not release every GPIO line cleanly", errors)


class _Output:
    def __init__(self, device: Any) -> None:
        # The pin, not the device: the HX710B's clock pulse must stay under 60 µs, and the
        # device layer's locking and checks cost more than the pin write itself.
        self._pin = device.pin

    def set(self, high: bool) -> None:
        self._pin.state = 1 if high else 0


class _Pwm:
    def __init__(self, device: Any) -> None:
        self._device = device

    def set_duty(self, duty: float) -> None:
        self._device.value = duty


class _Input:
    def __init__(self, device: Any) -> None:
        self._pin = device.pin  # the short path, as for outputs

    def read(self) -> bool:
        return bool(self._pin.state)
