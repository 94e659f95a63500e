"""Sampler threads: sensor I/O (bit-banging, I2C, 1-wire) never runs in the control tick.

A sampler reads a group of channels again and again in its own thread and keeps the newest
accepted sample of each, with the monotonic time it was taken. The control tick only looks at
those. A rejected or failed reading keeps the previous sample, whose time then stops moving:
the safety supervisor sees a stale sensor and trips `sensor_fault` (docs/device.md).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from device.hal import Sample

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

NO_SAMPLE = Sample(math.nan, -math.inf)
"""Before the first reading: not a number, from the infinite past."""


class Sampler:
    """Reads `channels` values with `read` every `interval_s`, in a thread of its own.

    Args:
        name: for logs and errors ("pressure", "temperature").
        read: one reading of every channel; None marks a rejected channel.
        channels: how many values `read` returns.
        clock: the control loop's monotonic clock.
        interval_s: pause between readings (0: as fast as `read` allows).
    """

    def __init__(
        self,
        *,
        name: str,
        read: Callable[[], Sequence[float | None]],
        channels: int,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = 0.0,
    ) -> None:
        self.name = name
        self._read = read
        self.channels = channels
        self._clock = clock
        self.interval_s = interval_s
        self._samples = [NO_SAMPLE] * channels
        self.readings = 0
        self.rejected = 0
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def latest(self, channel: int) -> Sample:
        """The newest accepted sample of `channel`."""
        return self._samples[channel]

    def poll(self) -> None:
        """Take one reading of every channel now (the thread calls this in a loop)."""
        try:
            values = self._read()
        except Exception as exc:  # an I2C error must not end the thread: the data goes stale
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.errors == 1 or self.errors % 1000 == 0:
                log.warning("%s sensors: read failed (%d so far): %s", self.name, self.errors, exc)
            return
        at = self._clock()
        samples = list(self._samples)
        for i, value in enumerate(values):
            if value is None or not math.isfinite(value):
                self.rejected += 1
            else:
                samples[i] = Sample(value, at)
        self._samples = samples  # one reference swap: the control tick never sees half a set
        self.readings += 1

    def start(self) -> None:
        """Start the thread (a daemon: it must never keep a dying process alive)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"legwave-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            if self.interval_s > 0:
                self._stop.wait(self.interval_s)

    def wait_for_samples(self, timeout: float) -> list[int]:
        """Wait until every channel has a sample; return the channels that still have none."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [i for i in range(self.channels) if self._samples[i] is NO_SAMPLE]
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.01)
