"""The hardware bundle, the samples it reads and the orders the control logic gives it."""

from __future__ import annotations

# Imported at run time, not only for type checking: mypyc-compiled dataclasses read their
# annotations when the module loads.
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from device.hal.protocols import (
    Heater,
    PressureSensor,
    Pump,
    Switch,
    TemperatureSensor,
    Valve,
    VibrationMotor,
)


class Sample(NamedTuple):
    """One sensor reading and the monotonic time it was taken."""

    value: float
    at: float


@dataclass(slots=True)
class Readings:
    """Everything read from the sensors in one control tick."""

    pressure: list[Sample]
    temperature: list[Sample]


@dataclass(slots=True)
class Orders:
    """What every actuator should do after this tick. The default is the safe state."""

    zones: int
    heaters: int = 0
    pump: float = 0.0
    inlet_open: list[bool] = field(default_factory=list)
    exhaust_open: list[bool] = field(default_factory=list)
    heater_on: list[bool] = field(default_factory=list)
    heater_supply: bool = False
    vibration: float = 0.0

    def __post_init__(self) -> None:
        if not self.inlet_open:
            self.inlet_open = [False] * self.zones
        if not self.exhaust_open:
            self.exhaust_open = [True] * self.zones
        if not self.heater_on:
            self.heater_on = [False] * self.heaters

    def make_safe(self) -> None:
        """Make these orders the safe state: pump, heat and vibration off, every zone venting."""
        self.pump = 0.0
        self.vibration = 0.0
        self.heater_supply = False
        for i in range(self.zones):
            self.inlet_open[i] = False
            self.exhaust_open[i] = True
        for i in range(self.heaters):
            self.heater_on[i] = False

    def is_safe(self) -> bool:
        """True when these orders are the safe state."""
        return (
            self.pump == 0.0
            and self.vibration == 0.0
            and not self.heater_supply
            and not any(self.heater_on)
            and not any(self.inlet_open)
            and all(self.exhaust_open)
        )


@dataclass(slots=True)
class Hardware:
    """One massager's parts, in zone order (distal first)."""

    pump: Pump
    inlets: Sequence[Valve]
    exhausts: Sequence[Valve]
    pressure: Sequence[PressureSensor]
    heaters: Sequence[Heater]
    temperature: Sequence[TemperatureSensor]
    heater_supply: Switch
    vibration: VibrationMotor

    def __post_init__(self) -> None:
        n = len(self.inlets)
        if not (len(self.exhausts) == len(self.pressure) == n) or n == 0:
            raise ValueError("every zone needs one inlet, one exhaust and one pressure sensor")
        if len(self.heaters) != len(self.temperature):
            raise ValueError("every heater needs one temperature sensor")

    @property
    def zones(self) -> int:
        """Number of zones."""
        return len(self.inlets)

    def read(self) -> Readings:
        """Read every sensor once."""
        return Readings(
            pressure=[s.read() for s in self.pressure],
            temperature=[s.read() for s in self.temperature],
        )

    def apply(self, orders: Orders) -> None:
        """Drive every actuator as `orders` say; exhausts open before inlets change or pumps run."""
        for valve, is_open in zip(self.exhausts, orders.exhaust_open, strict=True):
            valve.set_open(is_open)
        for valve, is_open in zip(self.inlets, orders.inlet_open, strict=True):
            valve.set_open(is_open)
        self.pump.set_duty(orders.pump)
        self.heater_supply.set_on(orders.heater_supply)
        for heater, on in zip(self.heaters, orders.heater_on, strict=True):
            heater.set_on(on)
        self.vibration.set_duty(orders.vibration)

    def safe_state(self) -> None:
        """Put every actuator in its safe state; each step is tried even if another one fails."""
        parts: list[Pump | Valve | Heater | Switch | VibrationMotor] = [
            self.pump,
            self.heater_supply,
            *self.heaters,
            self.vibration,
            *self.exhausts,
            *self.inlets,
        ]
        errors: list[Exception] = []
        for part in parts:
            try:
                part.safe_state()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("could not make every actuator safe", errors)
