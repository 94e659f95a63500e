"""Hardware abstraction: the seams between control logic and pumps, valves, sensors and heaters.

Every actuator has a safe state (pump off, inlets closed, exhausts open, heater off, vibration
off). Backends (`device.backends`) implement these Protocols; nothing here imports hardware.
"""

from device.hal.hardware import Hardware, Orders, Readings, Sample
from device.hal.protocols import (
    Clock,
    Heater,
    PressureSensor,
    Pump,
    Switch,
    TemperatureSensor,
    Valve,
    VibrationMotor,
)

__all__ = [
    "Clock",
    "Hardware",
    "Heater",
    "Orders",
    "PressureSensor",
    "Pump",
    "Readings",
    "Sample",
    "Switch",
    "TemperatureSensor",
    "Valve",
    "VibrationMotor",
]
