"""HX710B 24-bit bridge ADCs, bit-banged (Avia HX710 datasheet).

Protocol: DOUT goes low when a conversion is ready; 24 clock pulses shift the result out,
MSB first, two's complement; 1-3 more pulses choose the next conversion (HX710B: 25 pulses
→ differential at 10 SPS, 27 → differential at 40 SPS) and push DOUT high again. Several chips
share one SCK line and are read in the same pulses, one DOUT each.

The hazard: SCK held high for more than 60 µs powers the chip down, and a Python thread can be
preempted between raising and lowering SCK. The chip then answers with ones, which decode as a
plausible number. So every pulse is timed and a frame with a pulse longer than
`MAX_HIGH_NS` is dropped; so is a chip whose DOUT is not high after the frame (out of step),
and a value at either rail (saturated, or what a powered-down chip sends).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from device.backends.pi.lines import InputLine, OutputLine

DATA_BITS = 24
PULSES = {10: 25, 40: 27}
"""Total clock pulses per read, by the conversion rate they choose for the next sample."""
MAX_HIGH_NS = 50_000
"""Longest SCK high time accepted; the chip powers down after 60 µs."""
RAIL_HIGH = 0x7FFFFF
RAIL_LOW = -0x800000


class FrameError(ValueError):
    """A frame that must not be used; the message says why."""


def decode(bits: Sequence[int]) -> int:
    """The signed value of 24 bits, MSB first (two's complement).

    Raises:
        FrameError: not 24 bits of 0/1, or a value at a rail.
    """
    if len(bits) != DATA_BITS or any(b not in (0, 1) for b in bits):
        raise FrameError(f"expected {DATA_BITS} bits of 0/1, got {list(bits)!r}")
    value = 0
    for bit in bits:
        value = value << 1 | bit
    if value & 0x800000:
        value -= 1 << DATA_BITS
    if value in (RAIL_HIGH, RAIL_LOW):
        raise FrameError(f"value {value:#x} is at a rail (saturated or a powered-down chip)")
    return value


def check_frame(bits: Sequence[int], *, longest_high_ns: int, dout_after: bool) -> int:
    """Validate one chip's frame and decode it.

    Args:
        bits: the 24 data bits.
        longest_high_ns: the longest SCK high time in the whole frame.
        dout_after: DOUT's level after the last pulse; the chip drives it high.

    Raises:
        FrameError: why the frame is unusable.
    """
    if longest_high_ns > MAX_HIGH_NS:
        raise FrameError(
            f"a clock pulse lasted {longest_high_ns / 1000:.0f} µs (> {MAX_HIGH_NS / 1000:.0f});"
            " the chip may have powered down mid-frame"
        )
    if not dout_after:
        raise FrameError("DOUT still low after the frame: the chip is out of step")
    return decode(bits)


class Hx710bArray:
    """HX710B chips on one shared clock.

    Args:
        sck: the shared clock line (idles low: idle high would power the chips down).
        dout: one data line per chip.
        rate_sps: 10 or 40 conversions a second.
        ready_timeout_s: how long to wait for every chip to have a conversion ready.
        clock_ns: a nanosecond counter for pulse timing.
        sleep: waits while the chips convert.
    """

    def __init__(
        self,
        *,
        sck: OutputLine,
        dout: Sequence[InputLine],
        rate_sps: int = 40,
        ready_timeout_s: float | None = None,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_sps not in PULSES:
            raise ValueError(f"rate_sps {rate_sps}: the HX710B converts at 10 or 40 SPS")
        self.sck = sck
        self.dout = list(dout)
        self.pulses = PULSES[rate_sps]
        self.ready_timeout_s = ready_timeout_s or 2.5 / rate_sps
        self._clock_ns = clock_ns
        self._sleep = sleep
        self.rejected = 0
        self.last_error: str | None = None
        sck.set(False)

    def _ready(self) -> bool:
        return not any(line.read() for line in self.dout)

    def read_counts(self) -> list[int | None]:
        """One conversion from every chip; None for a chip whose frame was rejected."""
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._ready():
            if time.monotonic() >= deadline:
                self._reject("no conversion ready in time (DOUT stays high)")
                return [None] * len(self.dout)
            self._sleep(0.001)
        bits: list[list[int]] = [[] for _ in self.dout]
        longest = 0
        now_ns = self._clock_ns
        for pulse in range(self.pulses):
            t0 = now_ns()
            self.sck.set(True)
            self.sck.set(False)
            high = now_ns() - t0
            longest = max(longest, high)
            if pulse < DATA_BITS:
                for chip, line in enumerate(self.dout):
                    bits[chip].append(1 if line.read() else 0)
        out: list[int | None] = []
        for chip, line in enumerate(self.dout):
            try:
                out.append(check_frame(bits[chip], longest_high_ns=longest, dout_after=line.read()))
            except FrameError as exc:
                self._reject(f"chip {chip}: {exc}")
                out.append(None)
        return out

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.last_error = why
