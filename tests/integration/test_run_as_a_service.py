"""`legwave run` under systemd's notify protocol, and with a Pi backend on a machine that is not."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.broker import Mosquitto
from bridge.config import load_settings
from bridge.doctor import Doctor, Host
from tests.integration.conftest import HANG_GUARD_S
from tests.integration.test_cli_agent import env_for


def _drain(
    sock: socket.socket, until: float, done: Callable[[list[str]], bool] | None = None
) -> list[tuple[float, str]]:
    """Messages until `until`, or until `done` says enough."""
    got: list[tuple[float, str]] = []
    while time.monotonic() < until and not (done and done([m for _, m in got])):
        try:
            got.append((time.monotonic(), sock.recv(4096).decode()))
        except TimeoutError:
            continue
    return got


def _up(messages: list[str]) -> bool:
    return any(m.startswith("READY=1") for m in messages) and messages.count("WATCHDOG=1") >= 3


def test_under_systemd_it_says_ready_feeds_the_watchdog_and_says_stopping(
    broker: Mosquitto, tmp_path: Path
) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.1)
    env = env_for(broker, tmp_path, NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="1000000")
    with (tmp_path / "agent.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run"], env=env, stderr=log)
    try:
        first = _drain(sock, time.monotonic() + 30.0, _up)
        messages = [m for _, m in first]
        assert any(m.startswith("READY=1\nSTATUS=device clidev on 127.0.0.1:") for m in messages)
        pings = [t for t, m in first if m == "WATCHDOG=1"]
        assert len(pings) >= 3  # every half second (WatchdogSec=1)
        # a frozen process feeds nothing: that is what makes systemd restart it
        proc.send_signal(signal.SIGSTOP)
        _drain(sock, time.monotonic() + 0.2)  # what it sent before it stopped
        frozen = _drain(sock, time.monotonic() + 1.5)
        proc.send_signal(signal.SIGCONT)
        assert [m for _, m in frozen if m == "WATCHDOG=1"] == []
        # fed again once it runs (the wait is a hang guard, not a time bound)
        fed = _drain(sock, time.monotonic() + HANG_GUARD_S, lambda m: "WATCHDOG=1" in m)
        assert "WATCHDOG=1" in [m for _, m in fed]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "STOPPING=1" in [m for _, m in _drain(sock, time.monotonic() + 0.5)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


@pytest.mark.parametrize("backend", ["gpiozero", "rpigpio"])
def test_a_pi_backend_off_a_pi_exits_with_what_to_do(
    backend: str, broker: Mosquitto, tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "run", "--backend", backend],
        env=env_for(broker, tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert f"legwave: error: backend {backend!r} needs a Raspberry Pi" in out.stderr
    assert "--backend sim" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_doctor_reaches_a_real_broker(broker: Mosquitto, tmp_path: Path) -> None:
    settings = load_settings(None, mqtt={"host": "127.0.0.1", "port": broker.port})
    doctor = Doctor(settings, backend="gpiozero", host=Host(root=tmp_path))
    doctor.broker()
    assert [(c.name, c.verdict) for c in doctor.checks] == [("broker", "OK")]
    assert doctor.checks[0].detail == f"connected to 127.0.0.1:{broker.port}"
