"""The simulator's physics behind GPIO lines and sensor chips.

A Pi backend drives lines and reads chips; the plant reads what each line drives, turns it into
the simulator's inputs as the reference wiring would (docs/hardware.md), and answers the sensor
chips from the simulated sensors: ADS1115 registers for MPX5050 pressure sensors and NTC
thermistors, and HX710B bit streams on data lines. The tests drive both GPIO backends against
it, and `legwave plant` serves it to another process (`device.backends.plant.server`).
"""

from __future__ import annotations

import errno
import math
from typing import TYPE_CHECKING

from device.backends.pi.ads1115 import PGA_BITS, REG_CONFIG, REG_CONVERSION, RESET_CONFIG
from device.backends.pi.config import (
    Ads1115Pressure,
    Hx710bPressure,
    NtcTemperature,
    PiConfig,
)
from device.backends.pi.hx710b import DATA_BITS, PULSES
from device.backends.pi.transfer import MMHG_PER_KPA
from device.hal import Orders

BOARD_COUNTS_PER_MMHG = 3_712.0
"""The simulated HX710B board's scale when the configuration gives none: calibration finds it."""

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from device.backends.sim import SimulatedMassager

FULL_SCALE_V = {bits: fs for fs, bits in PGA_BITS.items()}


class EmulatedAdsBus:
    """ADS1115 chips on one I2C bus; `volts(address, channel)` is what each input sees.

    A chip that is not there does not acknowledge: OSError 121, as smbus2 raises it.
    """

    def __init__(self, volts: Callable[[int, int], float], addresses: Sequence[int]) -> None:
        self.volts = volts
        self.config = dict.fromkeys(addresses, RESET_CONFIG)
        self.conversion = dict.fromkeys(addresses, 0)
        self.transactions = 0

    def _chip(self, address: int) -> None:
        if address not in self.config:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        self.transactions += 1

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None:
        """A register write; the config register with OS set starts a conversion."""
        self._chip(i2c_addr)
        if register != REG_CONFIG or len(data) != 2:
            return  # the threshold registers: nothing legwave uses
        word = data[0] << 8 | data[1]
        self.config[i2c_addr] = word
        if word & 0x8000:
            mux = word >> 12 & 0b111
            full_scale = FULL_SCALE_V[min(word >> 9 & 0b111, 0b101)]
            volts = self.volts(i2c_addr, mux - 0b100) if mux >= 0b100 else 0.0
            counts = max(-32768, min(32767, math.floor(volts / full_scale * 32768)))
            self.conversion[i2c_addr] = counts & 0xFFFF

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """A register read: the conversion, or the config with OS=1 (the conversion is done)."""
        self._chip(i2c_addr)
        if register == REG_CONFIG:
            value = self.config[i2c_addr] | 0x8000
        elif register == REG_CONVERSION:
            value = self.conversion[i2c_addr]
        else:
            value = 0
        return [value >> 8 & 0xFF, value & 0xFF][:length]


class Hx710bChips:
    """HX710B chips on one clock line: each rising edge shifts out the next bit."""

    def __init__(self, counts: Callable[[], list[int]], chips: int, pulses: int) -> None:
        self.counts = counts
        self.pulses = pulses
        self.dout = [1] * chips
        self._frame: list[int] = []
        self._pulse = 0
        self._sck = 0
        self.frames = 0
        self.out_of_step_every = 0  # every n-th frame leaves DOUT low after the data bits
        self.dead = False  # never converts again: DOUT stays high

    def convert(self) -> None:
        """A conversion is ready: DOUT low."""
        if self.dead:
            return
        self.frames += 1
        self._frame = [c & 0xFFFFFF for c in self.counts()]
        self._pulse = 0
        self.dout = [0] * len(self.dout)

    def level(self, chip: int) -> int:
        """What chip `chip` drives on its DOUT line."""
        return self.dout[chip]

    def clock(self, level: int) -> None:
        """The clock line moved to `level`."""
        rising = level and not self._sck
        self._sck = level
        if not rising or not self._frame:
            return
        self._pulse += 1
        if self._pulse <= DATA_BITS:
            shift = DATA_BITS - self._pulse
            self.dout = [value >> shift & 1 for value in self._frame]
        elif self.out_of_step_every and self.frames % self.out_of_step_every == 0:
            self.dout = [0] * len(self.dout)  # a glitch: the chip is out of step
        else:
            self.dout = [1] * len(self.dout)  # after the data bits the chip drives DOUT high
        if self._pulse >= self.pulses:
            self._frame = []


class Plant:
    """A simulated massager whose inputs are GPIO line levels and whose sensors are chips.

    Args:
        sim: the simulated appliance (its faults inject on its own clock).
        config: the wiring.
        driven: what a BCM line drives (0/1 or a PWM duty), 0 when released.
    """

    def __init__(
        self, *, sim: SimulatedMassager, config: PiConfig, driven: Callable[[int], float]
    ) -> None:
        self.sim = sim
        self.config = config
        self.driven = driven
        self.zones = len(config.pins.inlets)
        self.heaters = len(config.pins.heaters)
        addresses: set[int] = set()
        for part in (config.pressure, config.temperature):
            if isinstance(part, Ads1115Pressure | NtcTemperature):
                addresses |= {ch.address for ch in part.channels}
        self.bus = EmulatedAdsBus(self._volts, sorted(addresses))
        self._sensed_at: float | None = None
        self._sensed_values: tuple[list[float], list[float]] = ([], [])
        self.hx710b: Hx710bChips | None = None
        if isinstance(config.pressure, Hx710bPressure):
            p = config.pressure
            self.hx710b = Hx710bChips(self._counts, len(p.dout), PULSES[p.rate_sps])

    def orders(self) -> Orders:
        """The orders the line levels amount to, as the wiring turns them into air and heat."""
        pins = self.config.pins
        return Orders(
            zones=self.zones,
            heaters=self.heaters,
            pump=self.driven(pins.pump),
            inlet_open=[self.driven(p) > 0.5 for p in pins.inlets],
            exhaust_open=[self.driven(p) < 0.5 for p in pins.exhausts],  # energised = closed
            heater_on=[self.driven(p) > 0.5 for p in pins.heaters],
            heater_supply=self.driven(pins.heater_supply) > 0.5,
            vibration=self.driven(pins.vibration),
        )

    def sync(self) -> None:
        """Feed the lines' levels to the physics, from now on."""
        self.sim.hardware.apply(self.orders())

    def _sensed(self) -> tuple[list[float], list[float]]:
        now = self.sim.clock()
        if now != self._sensed_at:  # every chip of one instant reads the same sensors once
            readings = self.sim.hardware.read()
            self._sensed_values = (
                [s.value for s in readings.pressure],
                [s.value for s in readings.temperature],
            )
            self._sensed_at = now
        return self._sensed_values

    def _volts(self, address: int, channel: int) -> float:
        pressures, temperatures = self._sensed()
        p = self.config.pressure
        if isinstance(p, Ads1115Pressure):
            for zone, ch in enumerate(p.channels):
                if (ch.address, ch.channel) == (address, channel):
                    kpa = pressures[zone] / MMHG_PER_KPA
                    vout = p.sensor.supply_v * (0.018 * kpa + 0.04)
                    return vout * p.sensor.divider
        t = self.config.temperature
        if isinstance(t, NtcTemperature):
            for pad, ch in enumerate(t.channels):
                if (ch.address, ch.channel) == (address, channel):
                    kelvin = temperatures[pad] + 273.15
                    r = t.r0_ohm * math.exp(t.beta * (1 / kelvin - 1 / (t.t0_c + 273.15)))
                    return t.supply_v * r / (r + t.series_ohm)
        return 0.0

    def _counts(self) -> list[int]:
        p = self.config.pressure
        scale = 1.0
        if isinstance(p, Hx710bPressure):  # a board whose scale nobody wrote down has its own
            scale = p.counts_per_mmhg or BOARD_COUNTS_PER_MMHG
        pressures, _ = self._sensed()
        return [round(v * scale) for v in pressures]
