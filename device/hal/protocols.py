"""Protocols for every part of the appliance; each actuator knows its own safe state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio

    from device.hal.hardware import Sample


class Pump(Protocol):
    """The air pump, driven by PWM."""

    def set_duty(self, duty: float) -> None:
        """Run the pump at `duty` (0-1)."""

    def safe_state(self) -> None:
        """Stop the pump."""


class Valve(Protocol):
    """A solenoid valve: inlets are normally closed, exhausts normally open (unpowered: vent)."""

    normally_open: bool

    def set_open(self, is_open: bool) -> None:
        """Open or close the valve, whatever its wiring needs to get there."""

    def safe_state(self) -> None:
        """Return to the unpowered position: closed for an inlet, open (venting) for an exhaust."""


class Heater(Protocol):
    """One sleeve's heating pad, switched on/off in a 2-10 s time-proportioning window."""

    def set_on(self, on: bool) -> None:
        """Switch the pad."""

    def safe_state(self) -> None:
        """Switch the pad off."""


class Switch(Protocol):
    """An independent supply switch, e.g. the heater supply the supervisor cuts on overtemp."""

    def set_on(self, on: bool) -> None:
        """Close (on) or open (off) the switch."""

    def safe_state(self) -> None:
        """Open the switch."""


class VibrationMotor(Protocol):
    """The vibration motor, driven by PWM."""

    def set_duty(self, duty: float) -> None:
        """Run the motor at `duty` (0-1)."""

    def safe_state(self) -> None:
        """Stop the motor."""


class PressureSensor(Protocol):
    """A gauge pressure sensor for one zone."""

    def read(self) -> Sample:
        """Return the newest sample in mmHg; its timestamp says how fresh it is."""


class TemperatureSensor(Protocol):
    """A skin-side temperature sensor under a heating pad."""

    def read(self) -> Sample:
        """Return the newest sample in °C."""


class Clock(Protocol):
    """Monotonic time for the control loop; virtual in simulation, real on the device."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""

    async def sleep_until(self, deadline: float, wake: asyncio.Event | None = None) -> bool:
        """Wait until `now() >= deadline` (at once when it already is), or until `wake` is set.

        Returns True when `wake` ended the wait early.
        """
