"""Faults the simulator can inject at a given time (docs/device.md, Faults)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SimFault(StrEnum):
    """Every injectable hardware fault."""

    HOSE_DISCONNECT = "hose_disconnect"
    SLOW_LEAK = "slow_leak"
    EXHAUST_STUCK_CLOSED = "exhaust_stuck_closed"
    INLET_STUCK_OPEN = "inlet_stuck_open"
    PUMP_STALL = "pump_stall"
    SENSOR_STUCK = "sensor_stuck"
    SENSOR_OFFSET = "sensor_offset"
    HEATER_RUNAWAY = "heater_runaway"
    PROCESS_CRASH = "process_crash"
    # wiring mistakes, there from power-on unless given a time
    INLET_TUBES_SWAPPED = "inlet_tubes_swapped"
    SENSOR_CHANNELS_SWAPPED = "sensor_channels_swapped"
    EXHAUST_INVERTED = "exhaust_inverted"
    SENSOR_DEAD = "sensor_dead"
    DIVIDER_INVERTED = "divider_inverted"


# Which zone (or heater) a fault hits when the spec does not name one. None: the whole device.
# A stuck-open inlet matters most on the lowest-pressure zone: it then bleeds the manifold.
_DEFAULT_TARGET: dict[SimFault, int | None] = {
    SimFault.HOSE_DISCONNECT: None,
    SimFault.SLOW_LEAK: -2,
    SimFault.EXHAUST_STUCK_CLOSED: 0,
    SimFault.INLET_STUCK_OPEN: -1,
    SimFault.PUMP_STALL: None,
    SimFault.SENSOR_STUCK: 0,
    SimFault.SENSOR_OFFSET: 0,
    SimFault.HEATER_RUNAWAY: 0,
    SimFault.PROCESS_CRASH: None,
    SimFault.INLET_TUBES_SWAPPED: 0,
    SimFault.SENSOR_CHANNELS_SWAPPED: 0,
    SimFault.EXHAUST_INVERTED: 0,
    SimFault.SENSOR_DEAD: 0,
    SimFault.DIVIDER_INVERTED: 0,
}
WIRING_FAULTS = frozenset(
    {
        SimFault.INLET_TUBES_SWAPPED,
        SimFault.SENSOR_CHANNELS_SWAPPED,
        SimFault.EXHAUST_INVERTED,
        SimFault.SENSOR_DEAD,
        SimFault.DIVIDER_INVERTED,
    }
)
"""Mistakes in how the device was put together: the self-test and calibration find them.

A swap (`inlet_tubes_swapped:calf`) crosses the named zone with the next one (the last zone with
the one before it)."""
ZONE_FAULTS = frozenset(k for k, v in _DEFAULT_TARGET.items() if v is not None) - {
    SimFault.HEATER_RUNAWAY
}


class FaultSpecError(ValueError):
    """A `--fault` argument that cannot be understood."""


@dataclass(frozen=True, slots=True)
class FaultInjection:
    """One fault, the simulated second it happens, and the zone or heater index it hits."""

    fault: SimFault
    at_s: float
    target: int | None = None

    @classmethod
    def parse(cls, spec: str, *, zones: list[str], default_at_s: float) -> FaultInjection:
        """Parse ``NAME[:ZONE][@SECONDS]``, e.g. ``slow_leak:calf@300`` or ``pump_stall``.

        A wiring fault without ``@SECONDS`` is there from the start.

        Args:
            spec: the text given on the command line.
            zones: zone names, to resolve ``:ZONE``.
            default_at_s: when the fault happens if ``@SECONDS`` is absent.
        """
        name, _, at = spec.partition("@")
        name, _, zone = name.partition(":")
        try:
            fault = SimFault(name.strip())
        except ValueError:
            raise FaultSpecError(
                "fault: unknown fault "
                f"{name!r}; choose one of {', '.join(f.value for f in SimFault)}"
            ) from None
        at_s = 0.0 if fault in WIRING_FAULTS else default_at_s
        if at:
            try:
                at_s = float(at)
            except ValueError:
                raise FaultSpecError(
                    f"fault: {at!r} after '@' is not a number of seconds"
                ) from None
            if not at_s >= 0 or at_s == float("inf"):
                raise FaultSpecError(f"fault: time {at!r} must be a finite number ≥ 0")
        target = _DEFAULT_TARGET[fault]
        if zone:
            if fault not in ZONE_FAULTS:
                raise FaultSpecError(f"fault: {fault.value} does not take a zone")
            if zone not in zones:
                raise FaultSpecError(f"fault: unknown zone {zone!r}; zones are {', '.join(zones)}")
            target = zones.index(zone)
        elif target is not None and fault in ZONE_FAULTS:
            target %= len(zones)
        return cls(fault=fault, at_s=at_s, target=target)
