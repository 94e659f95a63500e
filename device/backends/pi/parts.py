"""HAL parts on GPIO lines: pump, valves, heaters, supply switch, vibration, sensors.

Every line is active-high (a MOSFET driver with a gate pull-down), so low is safe for every
part: pump and heaters off, inlet closed, and the normally-open exhaust unpowered, venting.
A part writes its line only when the wanted level changes; `safe_state` always writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from device.hal import Sample

if TYPE_CHECKING:
    from collections.abc import Callable

    from device.backends.pi.lines import OutputLine, PwmLine


class PwmPart:
    """The pump or the vibration motor."""

    def __init__(self, line: PwmLine) -> None:
        self.line = line
        self.duty = 0.0

    def set_duty(self, duty: float) -> None:
        """Run at `duty` (clamped to 0-1)."""
        duty = min(max(duty, 0.0), 1.0)
        if duty != self.duty:
            self.line.set_duty(duty)
            self.duty = duty

    def safe_state(self) -> None:
        """Stop."""
        self.line.set_duty(0.0)
        self.duty = 0.0


class SwitchedPart:
    """A heater pad or the heater supply switch."""

    def __init__(self, line: OutputLine) -> None:
        self.line = line
        self.on = False

    def set_on(self, on: bool) -> None:
        """Switch on or off."""
        if on != self.on:
            self.line.set(on)
            self.on = on

    def safe_state(self) -> None:
        """Off."""
        self.line.set(False)
        self.on = False


class LineValve:
    """A solenoid valve on one line: energised = the opposite of its rest position.

    Args:
        line: its driver line.
        normally_open: True for an exhaust (open, venting, when unpowered).
    """

    def __init__(self, line: OutputLine, *, normally_open: bool) -> None:
        self.line = line
        self.normally_open = normally_open
        self.energised = False

    def set_open(self, is_open: bool) -> None:
        """Open or close: an exhaust closes when energised, an inlet opens."""
        energise = is_open != self.normally_open
        if energise != self.energised:
            self.line.set(energise)
            self.energised = energise

    def safe_state(self) -> None:
        """Unpowered: an inlet closed, an exhaust open."""
        self.line.set(False)
        self.energised = False


class SampledSensor:
    """A sensor channel read by a sampler thread; an offset is subtracted (zero calibration)."""

    def __init__(self, latest: Callable[[], Sample], offset: float = 0.0) -> None:
        self._latest = latest
        self.offset = offset

    def read(self) -> Sample:
        """The newest sample, offset removed; its time says how fresh it is."""
        sample = self._latest()
        return Sample(sample.value - self.offset, sample.at)
