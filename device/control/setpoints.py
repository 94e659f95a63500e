"""Per-zone pressure set-points from the user's settings, capped by every limit."""

from __future__ import annotations

from device.settings import (
    NO_BOOST,
    SEATED_MAX_MMHG,
    DeviceSettings,
    Mode,
    Posture,
    SessionSettings,
    intensity_setpoint_mmhg,
)


def setpoint_cap_mmhg(device: DeviceSettings, settings: SessionSettings) -> float:
    """The highest set-point any zone may get with these settings."""
    cap = float(device.limits.max_setpoint_mmhg)
    if settings.posture is Posture.SEATED:
        cap = min(cap, SEATED_MAX_MMHG)
    return cap


def zone_setpoints(
    device: DeviceSettings, settings: SessionSettings, *, ramp: float = 1.0
) -> list[float]:
    """Set-point of every zone, distal first.

    Args:
        device: zones, gradient, boost and limits.
        settings: the user's intensity, mode, boost and posture.
        ramp: soft-start progress 0-1; 0 gives level 1 and 1 the chosen level.
    """
    t = device.timings
    level = settings.intensity
    if settings.mode is Mode.KNEAD:
        level = min(level, t.knead_max_level)
    lowest = intensity_setpoint_mmhg(1)
    distal = lowest + (intensity_setpoint_mmhg(level) - lowest) * min(max(ramp, 0.0), 1.0)
    cap = setpoint_cap_mmhg(device, settings)
    points = []
    for i, name in enumerate(device.zones):
        sp = max(distal - t.gradient_mmhg * i, t.gradient_floor_mmhg)
        if settings.zone_boost != NO_BOOST and settings.zone_boost == name:
            sp += t.zone_boost_mmhg
        points.append(min(sp, cap))
    return points
