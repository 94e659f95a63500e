"""The systemd notify protocol against a real datagram socket, and the watchdog in the tick."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.systemd import Notifier
from device.backends.sim import SimulatedMassager
from device.control.massager import Massager
from device.hal import Sample
from device.runner import MonotonicClock, Runner
from device.settings import DeviceSettings


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"NOTIFY_SOCKET": str(tmp_path / "notify"), **extra}


def test_ready_status_and_stopping_reach_systemd(tmp_path: Path, listener: socket.socket) -> None:
    n = Notifier(env(tmp_path))
    assert n.enabled and n.watchdog_interval_s is None  # no WatchdogSec= configured
    n.ready("device lw on broker:1883")
    n.status("running a session")
    n.stopping()
    n.watchdog()  # nothing: no watchdog asked for
    assert received(listener) == [
        "READY=1\nSTATUS=device lw on broker:1883",
        "STATUS=running a session",
        "STOPPING=1",
    ]
    n.close()


def test_the_watchdog_is_fed_at_half_its_timeout(tmp_path: Path, listener: socket.socket) -> None:
    n = Notifier(env(tmp_path, WATCHDOG_USEC="2000000"))  # WatchdogSec=2
    assert n.watchdog_interval_s == 1.0
    for t in (0.0, 0.5, 0.99, 1.0, 1.5, 2.1):
        n.watchdog(t)
    assert received(listener) == ["WATCHDOG=1"] * 3  # at 0.0, 1.0 and 2.1
    n.close()


def test_a_watchdog_meant_for_another_process_is_ignored(tmp_path: Path) -> None:
    n = Notifier(env(tmp_path, WATCHDOG_USEC="2000000", WATCHDOG_PID=str(os.getpid() + 1)))
    assert n.watchdog_interval_s is None


def test_without_systemd_nothing_is_sent_and_nothing_breaks() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.send("READY=1") is False
    n.watchdog(0.0)


def test_abstract_socket_names_are_understood() -> None:
    name = f"legwave-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        n.ready("up")
        n.close()
        assert sock.recv(100) == b"READY=1\nSTATUS=up"
    finally:
        sock.close()


def test_a_vanished_socket_is_reported_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier(env(tmp_path, WATCHDOG_USEC="1000"))  # nobody listens there
    for t in range(5):
        n.watchdog(float(t))
    n.close()
    assert n.pings == 0
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1


def test_a_wedged_control_loop_stops_feeding_the_watchdog(
    tmp_path: Path, listener: socket.socket
) -> None:
    """The watchdog is fed from the tick: when the tick stops, so do the pings."""
    device = DeviceSettings()
    clock = MonotonicClock()
    sim = SimulatedMassager(zones=4, heaters=2, clock=clock.now)
    notifier = Notifier(env(tmp_path, WATCHDOG_USEC="100000"))  # pings every 50 ms
    runner = Runner(
        massager=Massager(device=device, wall=lambda t: datetime.now(UTC), new_id=lambda: "s1"),
        hardware=sim.hardware,
        clock=clock,
        on_tick=notifier.watchdog,
    )
    wedge_at = time.monotonic() + 0.3
    sensor = sim.hardware.pressure[0]
    read = sensor.read
    wedged: list[bool] = []

    def read_then_wedge() -> Sample:
        if time.monotonic() > wedge_at and not wedged:
            wedged.append(True)
            time.sleep(1.0)  # a driver that blocks the loop: nothing else runs
        return read()

    sensor.read = read_then_wedge  # type: ignore[method-assign]

    async def scenario() -> list[float]:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop=stop))
        arrivals: list[float] = []
        loop = asyncio.get_running_loop()
        end = time.monotonic() + 1.6
        while time.monotonic() < end:
            try:
                await asyncio.wait_for(loop.sock_recv(listener, 100), 0.05)
                arrivals.append(time.monotonic())
            except TimeoutError:
                pass
        stop.set()
        await task
        return arrivals

    listener.setblocking(False)
    arrivals = asyncio.run(scenario())
    notifier.close()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    before = [b - a for a, b in itertools.pairwise(arrivals) if b < wedge_at]
    assert before and max(before) < 0.45  # fed while the loop ticks (every 50 ms)
    assert max(gaps) >= 0.95  # not while it is wedged: systemd would restart the agent
