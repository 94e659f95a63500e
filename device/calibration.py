"""Pressure calibration: each channel's gain against a reference gauge, kept in the state directory.

A channel reads by the sensor's datasheet curve (the MPX5050's through its divider; the
simulator's sensor is one), with its zero taken at every start. The calibration adds one number
per channel: the gain that makes that reading match a reference gauge. A gain far from 1 is not a
calibration but a fault (a divider wired inverted reads half), and `legwave calibrate` refuses
to store it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime  # at run time: pydantic reads it
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from device.hal import Hardware, Sample

if TYPE_CHECKING:
    from device.hal.protocols import PressureSensor

MAX_ERROR = 0.15
"""A span further than this from the datasheet's curve is refused: it is a fault."""


class ChannelCalibration(BaseModel):
    """One zone's pressure channel, as calibrated."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    gain: float = Field(gt=1 - MAX_ERROR, lt=1 + MAX_ERROR)
    zero: float = Field(
        description="what it read vented: mmHg by the datasheet's curve, or HX710B counts"
    )
    reading: float = Field(description="what it read at the span point, zero removed")
    reference_mmhg: float = Field(gt=0, le=60, description="what the reference gauge read")
    at: datetime
    counts_per_mmhg: float | None = Field(
        None, description="an HX710B channel's scale (its readings are counts)"
    )


class Calibration(BaseModel):
    """Every zone's channel; what `legwave calibrate` writes and the agent reads."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    version: Literal[1] = 1
    zones: dict[str, ChannelCalibration] = Field(default_factory=dict)

    def gains(self, zones: list[str]) -> list[float]:
        """Each zone's gain, 1 where a zone is not calibrated."""
        return [self.zones[z].gain if z in self.zones else 1.0 for z in zones]

    def counts(self, zones: list[str]) -> list[float | None]:
        """Each zone's HX710B scale, None where there is none."""
        return [self.zones[z].counts_per_mmhg if z in self.zones else None for z in zones]

    def missing(self, zones: list[str]) -> list[str]:
        """The zones without a calibration."""
        return [z for z in zones if z not in self.zones]

    def fingerprint(self) -> dict[str, float]:
        """What a self-test depends on: each gain."""
        return {
            z: round(c.gain * (c.counts_per_mmhg or 1.0), 4) for z, c in sorted(self.zones.items())
        }


class _Calibrated:
    """A pressure sensor whose readings are multiplied by its channel's gain."""

    def __init__(self, sensor: PressureSensor, gain: float) -> None:
        self.sensor = sensor
        self.gain = gain

    def read(self) -> Sample:
        sample = self.sensor.read()
        return Sample(sample.value * self.gain, sample.at)


def calibrated(hardware: Hardware, gains: list[float]) -> Hardware:
    """`hardware` with each pressure channel scaled by its gain (none where the gain is 1)."""
    if all(g == 1.0 for g in gains):
        return hardware
    sensors = [
        s if g == 1.0 else _Calibrated(s, g) for s, g in zip(hardware.pressure, gains, strict=True)
    ]
    return dataclasses.replace(hardware, pressure=sensors)
