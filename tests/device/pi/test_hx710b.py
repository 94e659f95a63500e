"""HX710B: the decoder against recorded bit sequences, and the reader against chip models."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from device.backends.pi.hx710b import (
    MAX_HIGH_NS,
    FrameError,
    Hx710bArray,
    check_frame,
    decode,
)


def bits(text: str) -> list[int]:
    """A recorded frame, written MSB first with spaces between nibbles for reading."""
    return [int(c) for c in text.replace(" ", "")]


# Frames as a logic analyser shows them on DOUT, and the value each one stands for.
RECORDED = [
    ("0000 0000 0000 0000 0000 0000", 0),
    ("0000 0000 0000 0000 0000 0001", 1),
    ("1111 1111 1111 1111 1111 1111", -1),  # two's complement: all ones is -1
    ("1111 1111 1111 1111 1111 1110", -2),
    ("0111 1111 1111 1111 1111 1110", 8_388_606),  # the largest value that is not a rail
    ("1000 0000 0000 0000 0000 0001", -8_388_607),  # the smallest
    ("0000 0001 0010 0011 0100 0101", 0x012345),
    ("1111 1110 1101 1100 1011 1011", -0x012345),  # sign extension of a negative reading
    ("0000 0000 1001 1100 0100 0000", 40_000),  # ≈ 10 mmHg at 4,000 counts/mmHg
]


@pytest.mark.parametrize(("frame", "value"), RECORDED, ids=[f for f, _ in RECORDED])
def test_recorded_frames_decode_to_their_value(frame: str, value: int) -> None:
    assert decode(bits(frame)) == value


@pytest.mark.parametrize(
    "frame",
    [
        "0111 1111 1111 1111 1111 1111",  # positive rail: saturated
        "1000 0000 0000 0000 0000 0000",  # negative rail
        # preempted mid-frame: the chip powered down after bit 3 and sent ones from then on
        "0011 1111 1111 1111 1111 1111",
    ],
)
def test_rail_values_are_rejected(frame: str) -> None:
    if frame.startswith("0011"):
        # decodes to a plausible number: only the pulse timing can catch it
        assert decode(bits(frame)) == 0x3FFFFF
        with pytest.raises(FrameError, match="powered down"):
            check_frame(bits(frame), longest_high_ns=75_000, dout_after=True)
    else:
        with pytest.raises(FrameError, match="rail"):
            decode(bits(frame))


@pytest.mark.parametrize("frame", [[0] * 23, [0] * 25, [0] * 23 + [2], []])
def test_frames_of_the_wrong_shape_are_rejected(frame: list[int]) -> None:
    with pytest.raises(FrameError, match="24 bits"):
        decode(frame)


def test_a_chip_out_of_step_is_rejected() -> None:
    frame = bits("0000 0000 0000 0000 0000 0001")
    assert check_frame(frame, longest_high_ns=2_000, dout_after=True) == 1
    with pytest.raises(FrameError, match="out of step"):
        check_frame(frame, longest_high_ns=2_000, dout_after=False)


def test_the_pulse_limit_is_just_under_the_power_down_time() -> None:
    frame = bits("0000 0000 0000 0000 0000 0001")
    assert check_frame(frame, longest_high_ns=MAX_HIGH_NS, dout_after=True) == 1
    with pytest.raises(FrameError):
        check_frame(frame, longest_high_ns=MAX_HIGH_NS + 1, dout_after=True)


class Chip:
    """An HX710B: DOUT low when a conversion is ready, one bit per rising clock edge."""

    def __init__(self, value: int, pulses: int) -> None:
        self.value = value & 0xFFFFFF
        self.pulses = pulses
        self.edges = 0
        self.dout = 0  # a conversion is ready

    def rise(self) -> None:
        self.edges += 1
        if self.edges > 24:
            self.dout = 1
        else:
            self.dout = self.value >> (24 - self.edges) & 1


class Sck:
    def __init__(self, chips: list[Chip]) -> None:
        self.chips = chips
        self.level = False
        self.levels: list[bool] = []

    def set(self, high: bool) -> None:
        if high and not self.level:
            for chip in self.chips:
                chip.rise()
        self.level = high
        self.levels.append(high)


class Dout:
    def __init__(self, chip: Chip) -> None:
        self.chip = chip

    def read(self) -> bool:
        return bool(self.chip.dout)


def array(
    chips: list[Chip], *, rate: int = 40, clock_ns: Callable[[], int] | None = None
) -> tuple[Hx710bArray, Sck]:
    sck = Sck(chips)
    ticks = itertools.count(0, 1_000)  # every call 1 µs later: short pulses
    reader = Hx710bArray(
        sck=sck,
        dout=[Dout(c) for c in chips],
        rate_sps=rate,
        clock_ns=clock_ns or (lambda: next(ticks)),
        sleep=lambda s: None,
    )
    return reader, sck


@pytest.mark.parametrize(("rate", "pulses"), [(40, 27), (10, 25)])
def test_the_reader_clocks_out_every_chip_at_once(rate: int, pulses: int) -> None:
    chips = [Chip(12_345, pulses), Chip(-40_000, pulses), Chip(0, pulses)]
    reader, sck = array(chips, rate=rate)
    assert sck.levels == [False]  # the clock idles low: high would power the chips down
    assert reader.read_counts() == [12_345, -40_000, 0]
    assert sum(sck.levels[1:]) == pulses  # 24 data + the pulses that choose the next rate
    assert sck.levels[-1] is False


def test_a_stretched_pulse_drops_the_whole_frame() -> None:
    chips = [Chip(1_000, 27), Chip(2_000, 27)]
    times = iter([0, 1_000] * 10 + [20_000, 95_000] + [0, 1_000] * 100)  # pulse 11: 75 µs
    reader, _ = array(chips, clock_ns=lambda: next(times))
    assert reader.read_counts() == [None, None]
    assert reader.rejected == 2
    assert reader.last_error is not None and "powered down" in reader.last_error


def test_no_conversion_ready_gives_no_reading() -> None:
    chips = [Chip(1_000, 27)]
    chips[0].dout = 1  # a powered-down or unplugged chip: DOUT stays high, never ready
    reader = Hx710bArray(
        sck=Sck(chips), dout=[Dout(chips[0])], ready_timeout_s=0.01, sleep=lambda s: None
    )
    assert reader.read_counts() == [None]
    assert reader.last_error is not None and "no conversion ready" in reader.last_error


def test_only_the_two_rates_exist() -> None:
    with pytest.raises(ValueError, match="10 or 40"):
        Hx710bArray(sck=Sck([]), dout=[], rate_sps=80)
