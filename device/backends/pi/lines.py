"""GPIO lines: what a Pi backend offers the parts and sensor drivers built on top of it.

Two implementations, each importing its library only when opened: `gpiozero_gpio` (gpiozero
on lgpio; the default, works on every Pi including the 5) and `rpigpio_gpio` (the RPi.GPIO
API, from RPi.GPIO on a Pi 4 and older or rpi-lgpio on a Pi 5).
"""

from __future__ import annotations

from typing import Protocol


class OutputLine(Protocol):
    """A digital output. Every output starts low: with the reference wiring, that is safe."""

    def set(self, high: bool) -> None:
        """Drive the line high or low."""


class PwmLine(Protocol):
    """A PWM output (software-timed on the Pi 5). Starts at duty 0."""

    def set_duty(self, duty: float) -> None:
        """Set the duty cycle, 0-1."""


class InputLine(Protocol):
    """A digital input without pull (the sensor drives it)."""

    def read(self) -> bool:
        """The line's level."""


class Gpio(Protocol):
    """A GPIO chip as the Pi backends use it.

    `close()` drives every output it handed out low (the safe state of the reference wiring),
    then releases the lines; with the gate pull-downs, released lines stay low.
    """

    name: str

    def output(self, pin: int) -> OutputLine:
        """Claim `pin` (BCM) as an output, low."""

    def pwm(self, pin: int, frequency_hz: float) -> PwmLine:
        """Claim `pin` as a PWM output at duty 0."""

    def input(self, pin: int) -> InputLine:
        """Claim `pin` as an input without pull."""

    def close(self) -> None:
        """Drive every output low, then release every line."""
