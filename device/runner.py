"""The loop that drives a `Massager`: real hardware in real time, or the simulator in virtual time.

The same `tick()` runs either way.

Real time: absolute deadlines (``t0 + k·period``, never ``sleep(period)`` after the work), an
overrun counter, and safe state on every way out (return, exception, cancellation, signal).

Idle rate: while the massager is quiet (idle or latched in a fault, every zone vented, no pad
warm) the loop ticks at `DeviceSettings.idle_hz` (10 Hz) instead of the control rate: the same
tick, the same supervisor rules, fewer of them. The first tick that is not quiet brings the full
rate back for the next period; a command ends an idle sleep (the next tick one full period after
it) and `stop` ends the loop at once (docs/device.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections import deque
from typing import TYPE_CHECKING

from device.control.massager import Action, Command, Outcome

if TYPE_CHECKING:
    from collections.abc import Callable

    from device.control.massager import Massager
    from device.hal import Clock, Hardware, Orders

log = logging.getLogger(__name__)


EPOLL_GRANULARITY_S = 0.001
"""asyncio waits in epoll, whose timeout counts whole milliseconds, rounded up."""


def idle_deadline(deadline: float, idle_period: float) -> float:
    """The next idle tick: an idle period after `deadline`, brought back onto a whole millisecond.

    Never more than an idle period away (the supervisor's ≥ 10 Hz holds), at most a millisecond
    less. epoll counts its waits in whole milliseconds anyway; on that grid, devices that share a
    process (a simulated fleet) and fall in the same millisecond wake in one go instead of each
    paying a wake-up, while devices in different milliseconds stay spread out over the period.
    (A deadline a hair below a millisecond, from rounding, counts as on it.)
    """
    slot = EPOLL_GRANULARITY_S
    return math.floor((deadline + idle_period) / slot + 1e-6) * slot


class MonotonicClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    async def sleep_until(self, deadline: float, wake: asyncio.Event | None = None) -> bool:
        """Sleep until about `deadline` on the monotonic clock, or until `wake` is set.

        epoll rounds every wait up to the next millisecond, so a plain sleep wakes 0 to 1 ms
        late. Aiming half a millisecond early centres the wake-up on the deadline (within
        ±0.5 ms) instead, without spinning.

        Returns:
            True when `wake` ended the sleep.
        """
        delay = max(deadline - time.monotonic() - EPOLL_GRANULARITY_S / 2, 0.0)
        if wake is None:
            await asyncio.sleep(delay)
            return False
        try:
            async with asyncio.timeout(delay):
                await wake.wait()
        except TimeoutError:
            return False
        return True


class VirtualClock:
    """Simulated time: sleeping jumps straight to the deadline."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        """The current virtual time."""
        return self.t

    async def sleep_until(self, deadline: float, wake: asyncio.Event | None = None) -> bool:
        """Jump to `deadline` (and let other tasks run once).

        With `wake`, other tasks run once before the jump: when one of them sets it (a command
        sent meanwhile, a stop), the time stays where it is and this returns True.
        """
        if wake is not None:
            await asyncio.sleep(0)
            if wake.is_set():
                return True
        self.t = max(self.t, deadline)
        await asyncio.sleep(0)
        return False


class Runner:
    """Runs the control tick against a `Hardware`.

    Args:
        massager: the control logic.
        hardware: the parts it drives.
        clock: real or virtual time.
        on_tick: called with the tick's time after the orders are applied; must not block.
    """

    def __init__(
        self,
        *,
        massager: Massager,
        hardware: Hardware,
        clock: Clock,
        on_tick: Callable[[float], None] | None = None,
    ) -> None:
        self.massager = massager
        self.hardware = hardware
        self.clock = clock
        self.period = massager.device.period_s
        self.idle_period = massager.device.idle_period_s
        self.ticks = 0
        self.idle_ticks = 0  # ticks followed by an idle-rate sleep
        self.overruns = 0
        self.max_lateness = 0.0
        self.orders: Orders | None = None
        self.on_tick = on_tick
        self.lateness: list[float] | None = None  # set to a list to record every tick's lateness
        # each tick's lateness since `take_recent` (bounded: two minutes at the full rate)
        self.recent: deque[float] = deque(maxlen=round(120.0 / self.period))
        self._wake = asyncio.Event()  # set by a command or stop: ends an idle-rate sleep

    def tick(self, now: float, *, late: bool = False) -> Orders:
        """One control tick: read, decide (supervisor included), apply."""
        readings = self.hardware.read()
        orders = self.massager.step(now, readings, late=late)
        self.hardware.apply(orders)
        self.orders = orders
        self.ticks += 1
        if self.on_tick is not None:
            self.on_tick(now)  # must not block: e.g. queue messages for a publisher
        return orders

    def take_recent(self) -> list[float]:
        """Each tick's lateness (seconds) since the last call, oldest first."""
        recent = list(self.recent)
        self.recent.clear()
        return recent

    def submit(self, command: Command) -> Outcome:
        """Apply a command now. `stop` and `vent` reach the valves at once, not at the next tick."""
        outcome = self.massager.submit(command, self.clock.now())
        if command.action in (Action.STOP, Action.VENT):
            self.hardware.safe_state()
        self._wake.set()  # the next tick now, at the full rate
        return outcome

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Tick at the control rate until `stop` is set or the task is cancelled.

        Whatever ends the loop, every actuator is put in its safe state before this returns.
        """
        clock = self.clock
        period = self.period
        idle_period = self.idle_period
        self._wake = wake = asyncio.Event()  # (bound to this run's event loop)
        stopping = None
        if stop is not None:  # a stop ends an idle sleep too
            stopping = asyncio.ensure_future(_set_when(stop, wake))
        try:
            deadline = clock.now()
            while stop is None or not stop.is_set():
                now = clock.now()
                lateness = now - deadline
                late = lateness > period
                if lateness > self.max_lateness:
                    self.max_lateness = lateness
                self.recent.append(lateness)
                if self.lateness is not None:
                    self.lateness.append(lateness)
                if late:
                    self.overruns += 1
                    # Skip the periods already missed rather than bursting to catch up.
                    deadline += period * int(lateness // period)
                self.tick(now, late=late)
                if idle_period > period and self.massager.quiet:
                    self.idle_ticks += 1
                    deadline = idle_deadline(deadline, idle_period)
                    if stop is None or not stop.is_set():
                        wake.clear()
                    if await clock.sleep_until(deadline, wake):
                        if stop is not None and stop.is_set():
                            continue  # leave now
                        # A command: the full rate from the next period on. Not at once: the
                        # command's answer and state leave first, and stop and vent have
                        # already reached the valves (`submit`).
                        deadline = clock.now() + period
                        await clock.sleep_until(deadline)
                else:
                    deadline += period
                    await clock.sleep_until(deadline)
        finally:
            if stopping is not None:
                stopping.cancel()
            self.hardware.safe_state()

    async def serve(self, *, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        """Run until one of `signals` arrives; the hardware ends in its safe state."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.run(stop=stop)
        finally:
            for sig in signals:
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.remove_signal_handler(sig)
            log.info("control loop stopped; hardware in safe state")


async def _set_when(event: asyncio.Event, then: asyncio.Event) -> None:
    await event.wait()
    then.set()
