"""Fault-injection fixtures: processes to kill, a broker to kill or freeze, a link to cut."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.broker import Mosquitto
from device.backends.plant.client import plant_status
from tests.integration.conftest import (
    broker,  # noqa: F401 - the fixture, shared
    eventually,
)
from tests.integration.test_cli_agent import env_for

DEVICE = "faultdev"
BASE = f"legwave/{DEVICE}"


def agent_env(port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a `legwave run` process against 127.0.0.1:`port`, quick to notice."""
    return env_for(
        port,
        tmp_path,
        device=DEVICE,
        LEGWAVE_MQTT__KEEPALIVE_S="2",
        LEGWAVE_MQTT__RECONNECT_MAX_S="2",
        LEGWAVE_MQTT__CONNECT_TIMEOUT_S="3",
        LEGWAVE_PLANT_SOCKET=str(tmp_path / "plant.sock"),
        LEGWAVE_PI__ZERO__SETTLE_S="0.2",
        LEGWAVE_PI__ZERO__AVERAGE_S="0.2",
        **extra,
    )


class Process:
    """A legwave process with its log in a file (a pipe nobody reads would block it)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bridge.cli", *args], env=env, stderr=out, stdout=out
            )

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Path]:
    """A `legwave plant` process; yields its socket."""
    socket_path = tmp_path / "plant.sock"
    proc = Process(
        ["plant", "--socket", str(socket_path)], dict(os.environ), tmp_path / "plant.log"
    )
    deadline = time.monotonic() + 20
    while not socket_path.exists():
        assert proc.proc.poll() is None, proc.log()
        assert time.monotonic() < deadline, proc.log()
        time.sleep(0.05)
    yield socket_path
    proc.stop()


def status(socket_path: Path) -> dict[str, Any]:
    """The plant's physics, as the plant sees it."""
    return plant_status(socket_path)


def wait_until(condition: Any, timeout: float, what: str, step: float = 0.05) -> float:
    """Poll `condition` until true; return how long it took."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(step)
    return time.monotonic() - t0


def seed_memory(tmp_path: Path, **fields: Any) -> None:
    """Write a memory file as an earlier run of the agent would have left it."""
    folder = tmp_path / "state"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "memory.json").write_text(json.dumps({"version": 1, **fields}))


__all__ = [
    "BASE",
    "DEVICE",
    "Mosquitto",
    "Process",
    "agent_env",
    "eventually",
    "status",
    "wait_until",
]
