"""ADS1115 codec and reads, transfer functions, DS18B20 parsing, sampler threads.

Expected values come from the datasheets: ADS1115 (TI SBAS444, config register map and the
output-code table), MPX5050 (NXP: Vout = Vs·(0.018·P + 0.04)), DS18B20 (Maxim: 1/16 °C per
LSB, 85 °C at power-on).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from device.backends.pi.ads1115 import (
    RESET_CONFIG,
    AdcError,
    Ads1115,
    LockedBus,
    config_word,
    counts_to_volts,
)
from device.backends.pi.ds18b20 import Ds18b20Bus, parse_w1_slave
from device.backends.pi.sampler import NO_SAMPLE, Sampler
from device.backends.pi.transfer import MMHG_PER_KPA, mpx5050_mmhg, ntc_celsius


@pytest.mark.parametrize(
    ("channel", "full_scale", "rate", "word"),
    [
        # OS=1 | MUX=100+ch | PGA | MODE=1 | DR | COMP_QUE=11
        (0, 4.096, 860, 0b1_100_001_1_111_00011),  # 0xC3E3
        (1, 4.096, 860, 0xD3E3),
        (3, 4.096, 860, 0xF3E3),
        (0, 6.144, 128, 0b1_100_000_1_100_00011),  # 0xC183
        (2, 0.256, 8, 0b1_110_101_1_000_00011),
    ],
)
def test_config_words_match_the_register_map(
    channel: int, full_scale: float, rate: int, word: int
) -> None:
    assert config_word(channel, full_scale_v=full_scale, rate_sps=rate) == word


def test_the_reset_config_is_the_datasheets() -> None:
    # 0x8583: OS=1, AIN0-AIN1, ±2.048 V, single-shot, 128 SPS, comparator off
    assert RESET_CONFIG == 0b1_000_010_1_100_00011


@pytest.mark.parametrize(
    ("raw", "volts"),
    [
        (0x7FFF, 4.096 * 32767 / 32768),  # +FS·(2^15−1)/2^15
        (0x0001, 4.096 / 32768),  # one LSB = 125 µV at ±4.096 V
        (0x0000, 0.0),
        (0xFFFF, -4.096 / 32768),
        (0x8000, -4.096),  # −FS
    ],
)
def test_output_codes_convert_as_the_datasheet_table(raw: int, volts: float) -> None:
    assert counts_to_volts(raw, 4.096) == pytest.approx(volts, abs=1e-12)


def test_out_of_range_codes_and_channels_are_refused() -> None:
    with pytest.raises(ValueError, match="16-bit"):
        counts_to_volts(0x10000, 4.096)
    with pytest.raises(ValueError, match="AIN0-AIN3"):
        config_word(4, full_scale_v=4.096, rate_sps=860)


class RecordingBus:
    """An ADS1115 on a bus that records every transaction, MSB-first registers."""

    def __init__(self, conversion: int, *, busy_reads: int = 0) -> None:
        self.conversion = conversion
        self.busy_reads = busy_reads
        self.log: list[tuple[str, int, int, list[int]]] = []

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None:
        self.log.append(("write", i2c_addr, register, list(data)))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        self.log.append(("read", i2c_addr, register, [length]))
        if register == 0x01:
            if self.busy_reads > 0:
                self.busy_reads -= 1
                return [0x43, 0xE3]  # OS=0: still converting
            return [0xC3, 0xE3]
        return [self.conversion >> 8, self.conversion & 0xFF]


def test_a_read_starts_a_conversion_waits_and_reads_the_result() -> None:
    bus = RecordingBus(conversion=0x2710, busy_reads=2)  # 10000 counts
    waits: list[float] = []
    adc = Ads1115(LockedBus(bus), 0x48, full_scale_v=4.096, rate_sps=860, sleep=waits.append)
    assert adc.read_volts(0) == pytest.approx(10000 * 4.096 / 32768)  # 1.25 V
    assert bus.log[0] == ("write", 0x48, 0x01, [0xC3, 0xE3])  # config, MSB first
    assert [e[2] for e in bus.log[1:]] == [0x01, 0x01, 0x01, 0x00]  # poll OS, then convert
    assert waits[0] == pytest.approx(1.1 / 860)  # one conversion time and a margin


def test_a_conversion_that_never_finishes_is_an_error() -> None:
    adc = Ads1115(LockedBus(RecordingBus(0, busy_reads=100)), 0x49, sleep=lambda s: None)
    with pytest.raises(AdcError, match="0x49 AIN2: conversion stuck"):
        adc.read_volts(2)


@pytest.mark.parametrize(
    ("kpa", "vout"),
    [(0.0, 0.2), (50.0, 4.7), (25.0, 2.45), (10.666, 1.15994)],  # datasheet transfer function
)
def test_mpx5050_transfer_function(kpa: float, vout: float) -> None:
    assert mpx5050_mmhg(vout, supply_v=5.0) == pytest.approx(kpa * MMHG_PER_KPA, abs=0.05)


def test_mpx5050_is_ratiometric() -> None:
    # the same 40 mmHg at a 4.9 V supply gives 2 % less output; dividing by the real supply
    # gets it back, assuming 5.0 V would read low
    kpa = 40 / MMHG_PER_KPA
    vout = 4.9 * (0.018 * kpa + 0.04)
    assert mpx5050_mmhg(vout, supply_v=4.9) == pytest.approx(40.0)
    assert mpx5050_mmhg(vout, supply_v=5.0) < 39.5


@pytest.mark.parametrize(
    ("ohms", "celsius"),
    # a 10 kΩ B3950 part: R0 at 25 °C; 5.31 kΩ at 40 °C as vendors' tables give it; 45 °C and
    # 0 °C from the beta equation itself (R = R0·e^(B(1/T − 1/T0))), where tables drift from it
    [(10_000.0, 25.0), (5_313.0, 40.0), (4_348.0, 45.0), (33_620.0, 0.0)],
)
def test_ntc_beta_equation(ohms: float, celsius: float) -> None:
    supply, series = 3.3, 10_000.0
    v = supply * ohms / (ohms + series)  # NTC to ground, series resistor to supply
    t = ntc_celsius(v, supply_v=supply, series_ohm=series, beta=3950, r0_ohm=10_000, t0_c=25)
    assert t == pytest.approx(celsius, abs=0.3)


@pytest.mark.parametrize("volts", [0.0, 3.3, -0.1, 3.4])
def test_an_open_or_shorted_thermistor_is_no_reading(volts: float) -> None:
    assert ntc_celsius(volts, supply_v=3.3, series_ohm=1e4, beta=3950, r0_ohm=1e4, t0_c=25) is None


W1_OK = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"


@pytest.mark.parametrize(
    ("text", "celsius"),
    [
        (W1_OK, 23.125),  # 0x0172 = 370 sixteenths
        ("5e ff 4b 46 7f ff 02 10 7a : crc=7a YES\n5e ff 4b 46 7f ff 02 10 7a t=-10125\n", -10.125),
        ("92 02 4b 46 7f ff 0e 10 c1 : crc=c1 YES\n92 02 4b 46 7f ff 0e 10 c1 t=41125\n", 41.125),
        (W1_OK.replace("YES", "NO"), None),  # CRC failed
        ("50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n", None),
        ("", None),
        ("garbage\n", None),
        ("72 01 : crc=57 YES\n72 01 t=abc\n", None),
    ],
)
def test_w1_slave_files_parse(text: str, celsius: float | None) -> None:
    assert parse_w1_slave(text) == celsius


def test_a_missing_sensor_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "28-000000000001").mkdir()
    (tmp_path / "28-000000000001" / "w1_slave").write_text(W1_OK)
    bus = Ds18b20Bus(tmp_path, ["28-000000000001", "28-000000000002"])
    assert bus.read() == [23.125, None]


def test_a_sampler_keeps_the_newest_accepted_sample_per_channel() -> None:
    now = [10.0]
    values: list[list[float | None]] = [[1.0, 2.0], [1.5, None], [math.nan, 3.0]]
    sampler = Sampler(name="p", read=lambda: values.pop(0), channels=2, clock=lambda: now[0])
    assert sampler.latest(0) is NO_SAMPLE
    sampler.poll()
    now[0] = 11.0
    sampler.poll()
    assert (sampler.latest(0), sampler.latest(1)) == ((1.5, 11.0), (2.0, 10.0))  # 1 kept its age
    now[0] = 12.0
    sampler.poll()
    assert (sampler.latest(0), sampler.latest(1)) == ((1.5, 11.0), (3.0, 12.0))
    assert sampler.rejected == 2


def test_a_failing_read_leaves_the_samples_to_go_stale(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[list[float | None] | OSError] = [
        [5.0],
        OSError(121, "Remote I/O error"),
        OSError(121, "Remote I/O error"),
    ]

    def read() -> list[float | None]:
        item = calls.pop(0)
        if isinstance(item, OSError):
            raise item
        return item

    sampler = Sampler(name="pressure", read=read, channels=1, clock=lambda: 1.0)
    for _ in range(3):
        sampler.poll()
    assert sampler.latest(0) == (5.0, 1.0)
    assert sampler.errors == 2
    assert [r.getMessage() for r in caplog.records].count(
        "pressure sensors: read failed (1 so far): [Errno 121] Remote I/O error"
    ) == 1  # logged once, not at every failure


def test_the_sampler_thread_runs_and_stops() -> None:
    count = [0]
    ready = threading.Event()

    def read() -> list[float | None]:
        count[0] += 1
        if count[0] >= 5:
            ready.set()
        return [float(count[0])]

    sampler = Sampler(name="t", read=read, channels=1, interval_s=0.001)
    sampler.start()
    assert ready.wait(5)
    assert sampler.wait_for_samples(1.0) == []
    sampler.stop()
    stopped_at = count[0]
    time.sleep(0.02)
    assert count[0] == stopped_at
    assert sampler.latest(0).value >= 5
