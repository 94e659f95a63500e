"""ADS1115 16-bit ADC over I2C: register codec and single-shot reads (datasheet SBAS444).

The config register (0x01) starts a single-shot conversion with OS=1 and reads back OS=1 once
the conversion is done; the conversion register (0x00) holds a 16-bit two's-complement result,
one LSB = full scale / 32768. Both registers go MSB first on the wire, so they are written and
read as two-byte blocks: smbus2's ``read_word_data`` would swap the bytes.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

REG_CONVERSION = 0x00
REG_CONFIG = 0x01
OS_SINGLE = 1 << 15
MODE_SINGLE_SHOT = 1 << 8
COMPARATOR_OFF = 0b00011
PGA_BITS = {6.144: 0b000, 4.096: 0b001, 2.048: 0b010, 1.024: 0b011, 0.512: 0b100, 0.256: 0b101}
RATE_BITS = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4, 250: 5, 475: 6, 860: 7}
RESET_CONFIG = 0x8583  # the config register after power-up (datasheet, register map)


class I2cBus(Protocol):
    """The part of ``smbus2.SMBus`` the drivers use."""

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None:
        """Write `data` to `register`."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read `length` bytes from `register`."""


class AdcError(OSError):
    """A conversion that did not finish or could not be read."""


def config_word(channel: int, *, full_scale_v: float, rate_sps: int) -> int:
    """The config register value that starts one single-ended conversion on AIN`channel`."""
    if not 0 <= channel <= 3:
        raise ValueError(f"channel {channel}: the ADS1115 has AIN0-AIN3")
    mux = 0b100 + channel  # AINn against GND
    return (
        OS_SINGLE
        | mux << 12
        | PGA_BITS[full_scale_v] << 9
        | MODE_SINGLE_SHOT
        | RATE_BITS[rate_sps] << 5
        | COMPARATOR_OFF
    )


def counts_to_volts(raw: int, full_scale_v: float) -> float:
    """Convert the conversion register's 16 bits to volts (two's complement, FS/32768 each)."""
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"{raw:#x} is not a 16-bit register value")
    signed = raw - 0x10000 if raw & 0x8000 else raw
    return signed * full_scale_v / 32768.0


class LockedBus:
    """One I2C bus shared by several samplers: a conversion holds the bus from start to read."""

    def __init__(self, bus: I2cBus) -> None:
        self.bus = bus
        self.lock = threading.Lock()


class Ads1115:
    """One ADS1115.

    Args:
        bus: the I2C bus (shared, locked).
        address: 0x48-0x4B.
        full_scale_v: PGA full scale.
        rate_sps: data rate; a conversion takes 1/rate.
        sleep: waits for the conversion (injectable for tests).
    """

    def __init__(
        self,
        bus: LockedBus,
        address: int,
        *,
        full_scale_v: float = 4.096,
        rate_sps: int = 860,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus = bus
        self.address = address
        self.full_scale_v = full_scale_v
        self.rate_sps = rate_sps
        self._sleep = sleep

    def read_volts(self, channel: int) -> float:
        """Convert AIN`channel` once and return volts.

        Raises:
            AdcError: the conversion did not finish within twice its time, or I2C failed.
        """
        word = config_word(channel, full_scale_v=self.full_scale_v, rate_sps=self.rate_sps)
        conversion_s = 1.0 / self.rate_sps
        with self.bus.lock:
            bus = self.bus.bus
            bus.write_i2c_block_data(self.address, REG_CONFIG, [word >> 8, word & 0xFF])
            self._sleep(conversion_s * 1.1)
            for _ in range(10):
                hi, lo = bus.read_i2c_block_data(self.address, REG_CONFIG, 2)
                if (hi << 8 | lo) & OS_SINGLE:
                    break
                self._sleep(conversion_s * 0.1)
            else:
                raise AdcError(f"ADS1115 0x{self.address:02x} AIN{channel}: conversion stuck")
            hi, lo = bus.read_i2c_block_data(self.address, REG_CONVERSION, 2)
        return counts_to_volts(hi << 8 | lo, self.full_scale_v)

    def probe(self) -> int:
        """Read the config register (0x8583 after power-up): proves the chip answers."""
        with self.bus.lock:
            hi, lo = self.bus.bus.read_i2c_block_data(self.address, REG_CONFIG, 2)
        return hi << 8 | lo
