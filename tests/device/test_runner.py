"""The real-time loop: absolute deadlines, overruns, and safe state on every way out."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.control.faults import FaultCode
from device.control.massager import Action, Command, Massager, Status
from device.hal import Hardware, Orders, Sample
from device.runner import MonotonicClock, Runner, VirtualClock, idle_deadline
from device.settings import DeviceSettings


class Part:
    """Records what it was told; `safe` says whether it is in its safe state now."""

    def __init__(self, *, normally_open: bool = False) -> None:
        self.normally_open = normally_open
        self.value: float | bool = normally_open
        self.history: list[float | bool] = []

    def _set(self, value: float | bool) -> None:
        self.value = value
        self.history.append(value)

    set_duty = set_open = set_on = _set

    def safe_state(self) -> None:
        self._set(self.normally_open if isinstance(self.value, bool) else 0.0)

    @property
    def safe(self) -> bool:
        return (
            self.value == self.normally_open if isinstance(self.value, bool) else self.value == 0.0
        )


class Sensor:
    def __init__(
        self, clock: Callable[[], float], value: float, hook: Callable[[], None] | None = None
    ) -> None:
        self.clock, self.value, self.hook = clock, value, hook

    def read(self) -> Sample:
        if self.hook is not None:
            self.hook()
        return Sample(self.value, self.clock())


NO_IDLE_RATE = 50.0
"""`idle_hz` equal to the control rate: the loop ticks at the full rate whatever it does."""


class Bench:
    def __init__(
        self,
        clock: VirtualClock | MonotonicClock,
        hook: Callable[[], None] | None = None,
        *,
        idle_hz: float | None = None,
    ) -> None:
        self.device = DeviceSettings() if idle_hz is None else DeviceSettings(idle_hz=idle_hz)
        self.pump = Part()
        self.inlets = [Part() for _ in range(4)]
        self.exhausts = [Part(normally_open=True) for _ in range(4)]
        self.heaters = [Part(), Part()]
        self.supply = Part()
        self.vibration = Part()
        self.pump.value = self.vibration.value = 0.0
        self.sensors = [Sensor(clock.now, 0.0, hook if i == 0 else None) for i in range(4)]
        self.pads = [Sensor(clock.now, 33.0), Sensor(clock.now, 33.0)]
        self.hardware = Hardware(
            pump=self.pump,
            inlets=self.inlets,
            exhausts=self.exhausts,
            pressure=self.sensors,
            heaters=self.heaters,
            temperature=self.pads,
            heater_supply=self.supply,
            vibration=self.vibration,
        )
        ids = itertools.count()
        self.massager = Massager(
            device=self.device,
            wall=lambda _t: datetime(2026, 1, 1, tzinfo=UTC),
            new_id=lambda: f"s{next(ids)}",
        )
        self.runner = Runner(massager=self.massager, hardware=self.hardware, clock=clock)

    def parts(self) -> list[Part]:
        return [self.pump, *self.inlets, *self.exhausts, *self.heaters, self.supply, self.vibration]

    def make_busy(self) -> None:
        busy = Orders(zones=4, heaters=2, pump=0.9, heater_supply=True, vibration=0.5)
        busy.inlet_open[:] = [True] * 4
        busy.exhaust_open[:] = [False] * 4
        busy.heater_on[:] = [True, True]
        self.hardware.apply(busy)
        assert not any(p.safe for p in self.parts())

    def all_safe(self) -> bool:
        return all(p.safe for p in self.parts())


def test_virtual_run_keeps_absolute_deadlines_without_drift() -> None:
    clock = VirtualClock()
    times: list[float] = []
    stop = asyncio.Event()

    def record() -> None:
        times.append(clock.now())
        if len(times) == 10_000:
            stop.set()

    bench = Bench(clock, hook=record, idle_hz=NO_IDLE_RATE)
    asyncio.run(bench.runner.run(stop=stop))
    period = bench.runner.period
    assert len(times) == 10_000
    assert times[-1] == pytest.approx(9_999 * period, abs=1e-9)
    assert all(abs(t - k * period) < 1e-9 for k, t in enumerate(times))
    assert bench.runner.overruns == 0


def test_slow_ticks_count_as_overruns_and_raise_loop_overrun() -> None:
    clock = VirtualClock()
    stop = asyncio.Event()
    ticks = itertools.count()

    def slow() -> None:
        n = next(ticks)
        if 50 <= n < 60:
            clock.t += 0.05  # a sensor read that blocks for 2.5 periods
        if n == 80:
            stop.set()

    bench = Bench(clock, hook=slow, idle_hz=NO_IDLE_RATE)
    bench.runner.lateness = []  # what the benchmarks record
    asyncio.run(bench.runner.run(stop=stop))
    late = bench.runner.lateness
    assert len(late) == bench.runner.ticks  # one figure per tick
    assert max(late[:50]) == 0.0 and max(late) == pytest.approx(bench.runner.max_lateness)
    assert bench.runner.overruns >= 5
    assert bench.runner.max_lateness > bench.runner.period
    assert bench.massager.fault is FaultCode.LOOP_OVERRUN
    assert bench.massager.status is Status.FAULT


def test_an_exception_in_a_tick_leaves_the_hardware_safe() -> None:
    clock = VirtualClock()
    ticks = itertools.count()
    bench: Bench

    def explode() -> None:
        if next(ticks) == 20:
            bench.make_busy()
            raise RuntimeError("sensor bus died")

    bench = Bench(clock, hook=explode)
    with pytest.raises(RuntimeError, match="sensor bus died"):
        asyncio.run(bench.runner.run())
    assert bench.all_safe()


def test_cancellation_leaves_the_hardware_safe() -> None:
    async def scenario() -> Bench:
        bench = Bench(MonotonicClock(), idle_hz=NO_IDLE_RATE)
        task = asyncio.create_task(bench.runner.run())
        await asyncio.sleep(0.15)
        bench.make_busy()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return bench

    bench = asyncio.run(scenario())
    assert bench.all_safe()
    assert bench.runner.ticks >= 3  # it really ran in real time


def test_sigterm_stops_the_loop_in_safe_state() -> None:
    async def scenario() -> Bench:
        bench = Bench(MonotonicClock())
        task = asyncio.create_task(bench.runner.serve())
        await asyncio.sleep(0.1)
        bench.make_busy()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, timeout=2.0)
        return bench

    bench = asyncio.run(scenario())
    assert bench.all_safe()


def test_stop_reaches_the_valves_out_of_band() -> None:
    clock = VirtualClock()
    bench = Bench(clock)
    bench.runner.tick(0.0)
    bench.runner.submit(Command(action=Action.START))
    bench.make_busy()
    bench.runner.submit(Command(action=Action.STOP))
    assert bench.all_safe()  # before any further tick


def test_safe_state_tries_every_part_even_if_one_fails() -> None:
    clock = VirtualClock()
    bench = Bench(clock)
    bench.make_busy()

    def broken() -> None:
        raise OSError("pump driver gone")

    bench.pump.safe_state = broken  # type: ignore[method-assign]
    with pytest.raises(ExceptionGroup):
        bench.hardware.safe_state()
    assert all(p.safe for p in bench.parts() if p is not bench.pump)


class Ticks:
    """Runs a bench on the virtual clock, recording each tick's time and the status after it."""

    def __init__(self, bench: Bench, clock: VirtualClock, until: float) -> None:
        self.times: list[float] = []
        self.status: list[Status] = []
        self.bench, self.clock, self.until = bench, clock, until
        self.stop = asyncio.Event()
        bench.runner.on_tick = self.record
        self.at: list[tuple[float, Callable[[], object]]] = []

    def record(self, now: float) -> None:
        self.times.append(now)
        self.status.append(self.bench.massager.status)
        while self.at and self.at[0][0] <= now:
            self.at.pop(0)[1]()
        if now >= self.until:
            self.stop.set()

    def run(self) -> None:
        asyncio.run(self.bench.runner.run(stop=self.stop))

    def gaps(self, start: float, end: float) -> set[float]:
        pairs = zip(self.times, self.times[1:], strict=False)
        return {round(b - a, 6) for a, b in pairs if start <= a and b <= end}


def test_a_quiet_device_ticks_at_the_idle_rate_and_a_session_at_the_full_rate() -> None:
    clock = VirtualClock()
    bench = Bench(clock)
    ticks = Ticks(bench, clock, until=4.0)
    ticks.at.append((2.0, lambda: bench.runner.submit(Command(action=Action.START))))
    ticks.run()
    idle, full = bench.runner.idle_period, bench.runner.period
    assert (idle, full) == (0.1, 0.02)
    assert ticks.gaps(0.0, 2.0) == {idle}
    assert ticks.gaps(2.0, 4.0) == {full}  # the fit check began at once


@pytest.mark.parametrize(("mmhg", "fault"), [(9.0, None), (130.0, FaultCode.HARD_LIMIT)])
def test_air_in_a_zone_while_idle_is_seen_within_one_idle_period_then_at_the_full_rate(
    mmhg: float, fault: FaultCode | None
) -> None:
    """A valve stuck open with the pump running while the device is idle: air comes in."""
    clock = VirtualClock()
    bench = Bench(clock)
    ticks = Ticks(bench, clock, until=3.0)
    came_in: list[float] = []

    def air_in() -> None:  # right after an idle tick, the worst moment
        bench.sensors[2].value = mmhg
        came_in.append(clock.now())

    ticks.at.append((1.0 - 1e-6, air_in))
    ticks.run()
    idle, full = bench.runner.idle_period, bench.runner.period
    k = ticks.times.index(came_in[0])
    seen = ticks.times[k + 1]
    assert ticks.gaps(0.0, came_in[0]) == {idle}
    assert seen - came_in[0] <= idle + 1e-9  # the bound docs/device.md states
    assert ticks.gaps(seen, 3.0) == {full}  # and the full rate from then on
    if fault is not None:
        assert ticks.status[k + 1] is Status.FAULT  # tripped on the first tick that saw it
        assert bench.massager.fault is fault


def test_a_command_ends_an_idle_sleep_the_next_tick_one_full_period_later() -> None:
    clock = VirtualClock()
    bench = Bench(clock)
    ticks = Ticks(bench, clock, until=2.0)
    sent: list[float] = []

    def send() -> None:  # while the runner sleeps after an idle tick
        bench.runner.submit(Command(action=Action.START))
        sent.append(clock.now())

    ticks.at.append((1.0 - 1e-6, lambda: asyncio.get_running_loop().call_soon(send)))
    ticks.run()
    k = ticks.times.index(sent[0])  # the idle tick it followed
    period = bench.runner.period
    # one control period later (the answer goes first), not an idle period later
    assert ticks.times[k + 1] == pytest.approx(sent[0] + period, abs=1e-9)
    assert ticks.status[k + 1] is Status.FIT_CHECK
    assert ticks.gaps(sent[0], 2.0) == {period}


def test_stop_ends_an_idle_sleep_at_once() -> None:
    clock = VirtualClock()
    bench = Bench(clock)
    ticks = Ticks(bench, clock, until=1e9)
    set_at: list[float] = []

    def stop() -> None:  # in the idle tick: the runner goes to sleep right after it
        ticks.stop.set()
        set_at.append(clock.now())

    ticks.at.append((1.0 - 1e-6, stop))
    ticks.run()
    assert bench.runner.idle_ticks > 5
    assert clock.now() == set_at[0]  # it left then, not at the next idle deadline
    assert bench.all_safe()


def test_a_warm_pad_keeps_the_full_rate_while_idle() -> None:
    """A pad at 41.5 °C (after a session, or a heater stuck on): no idle rate until it cools."""
    clock = VirtualClock()
    bench = Bench(clock)
    ticks = Ticks(bench, clock, until=2.0)

    def set_pads(celsius: float) -> None:
        for pad in bench.pads:
            pad.value = celsius

    set_pads(41.5)
    ticks.at.append((1.0 - 1e-6, lambda: set_pads(35.0)))
    ticks.run()
    assert ticks.gaps(0.0, 1.0) == {bench.runner.period}
    assert bench.runner.idle_period in ticks.gaps(1.1, 2.0)


@given(deadline=st.floats(0.0, 1e7), idle_hz=st.sampled_from([10.0, 12.5, 25.0, 50.0]))
def test_the_next_idle_tick_is_on_a_millisecond_and_never_more_than_an_idle_period_away(
    deadline: float, idle_hz: float
) -> None:
    period = 1.0 / idle_hz
    nxt = idle_deadline(deadline, period)
    assert period - 0.001 - 1e-6 < nxt - deadline <= period + 1e-6
    assert abs(nxt * 1000 - round(nxt * 1000)) < 1e-6 * max(1.0, nxt)


def test_idle_ticks_land_on_whole_milliseconds_whatever_the_start() -> None:
    # Devices that share a process (a simulated fleet) and fall in the same millisecond then
    # wake in one go, instead of each paying a wake-up.
    for start in (0.0134, 0.05, 7.33333):
        clock = VirtualClock(start=start)
        bench = Bench(clock)
        ticks = Ticks(bench, clock, until=start + 2.0)
        ticks.run()
        assert ticks.times[0] == start
        later = ticks.times[1:]
        assert len(later) >= 19
        assert all(abs(t * 1000 - round(t * 1000)) < 1e-6 for t in later), later[:3]
        assert ticks.gaps(ticks.times[1], ticks.times[-1]) == {0.1}


def test_each_ticks_lateness_is_kept_for_the_diagnostics_and_bounded() -> None:
    clock = VirtualClock()
    stop = asyncio.Event()
    ticks = itertools.count()

    def slow() -> None:
        n = next(ticks)
        if n == 30:
            clock.t += 0.033  # one sensor read 33 ms slow: the next tick starts 13 ms late
        if n == 100:
            stop.set()

    bench = Bench(clock, hook=slow, idle_hz=NO_IDLE_RATE)
    runner = bench.runner
    asyncio.run(runner.run(stop=stop))
    recent = runner.take_recent()
    assert len(recent) == runner.ticks
    assert max(recent) == pytest.approx(0.013)
    assert runner.take_recent() == []  # taken: the next minute starts empty
    assert runner.recent.maxlen == round(120.0 / runner.period)  # two minutes, if nobody takes
