"""Sensor transfer functions: volts to mmHg and °C, from the parts' datasheets."""

from __future__ import annotations

import math

MMHG_PER_KPA = 7.500616827


def mpx5050_mmhg(vout: float, *, supply_v: float = 5.0) -> float:
    """MPX5050GP gauge pressure from its output: Vout = Vs·(0.018·P + 0.04), P in kPa.

    Ratiometric: pass the measured supply when you have it.
    """
    kpa = (vout / supply_v - 0.04) / 0.018
    return kpa * MMHG_PER_KPA


def ntc_celsius(
    v_adc: float,
    *,
    supply_v: float,
    series_ohm: float,
    beta: float,
    r0_ohm: float,
    t0_c: float,
) -> float | None:
    """Temperature of an NTC between the ADC input and ground, a series resistor to supply.

    Beta equation: 1/T = 1/T0 + ln(R/R0)/B. Returns None for an open or shorted thermistor
    (the input at a rail), which the supervisor then sees as a missing sample.
    """
    margin = supply_v * 0.005
    if not margin < v_adc < supply_v - margin:
        return None
    r_ntc = series_ohm * v_adc / (supply_v - v_adc)
    inv_t = 1.0 / (t0_c + 273.15) + math.log(r_ntc / r0_ohm) / beta
    return 1.0 / inv_t - 273.15
