"""Fault codes and what each one makes the device do (README: safety)."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    """HIGH: vent all, pump and heat off, latched until `clear_fault`. MEDIUM: see `FaultCode`."""

    HIGH = "high"
    MEDIUM = "medium"


class FaultCode(StrEnum):
    """Every fault the device can raise."""

    OVERPRESSURE = "overpressure"
    HARD_LIMIT = "hard_limit"
    VENT_FAILURE = "vent_failure"
    OVERTEMP = "overtemp"
    SENSOR_FAULT = "sensor_fault"
    LOOP_OVERRUN = "loop_overrun"
    HOLD_TOO_LONG = "hold_too_long"  # vent that zone, continue
    LEAK = "leak"  # report, continue
    INFLATE_TIMEOUT = "inflate_timeout"  # end the session
    NO_SLEEVE = "no_sleeve"  # fit check failed: end the session

    @property
    def priority(self) -> Priority:
        """How serious the fault is."""
        return Priority.HIGH if self in _HIGH else Priority.MEDIUM

    @property
    def ends_session(self) -> bool:
        """True when the fault ends a running session."""
        return self in _HIGH or self in (FaultCode.INFLATE_TIMEOUT, FaultCode.NO_SLEEVE)


_HIGH = frozenset(
    {
        FaultCode.OVERPRESSURE,
        FaultCode.HARD_LIMIT,
        FaultCode.VENT_FAILURE,
        FaultCode.OVERTEMP,
        FaultCode.SENSOR_FAULT,
        FaultCode.LOOP_OVERRUN,
    }
)
