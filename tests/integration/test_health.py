"""`legwave health` against a running agent: a frozen agent, a lost broker, a crash and a restart.

Each call is the command a container's healthcheck runs, as a process of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.broker import Mosquitto
from bridge.health import SOCKET_NAME
from tests.integration.conftest import HANG_GUARD_S
from tests.integration.test_cli_agent import env_for

HEALTH = [sys.executable, "-m", "bridge.cli", "health", "--timeout", "1"]


def health(env: dict[str, str], *extra: str) -> tuple[int, str]:
    done = subprocess.run([*HEALTH, *extra], env=env, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout.strip() + done.stderr.strip()


ASKS = int(HANG_GUARD_S / 0.2)
"""How many times `until` asks before it calls the run hung: a guard against a hang, not a
timing claim (each ask takes what it takes; how fast the answer comes is not tested here)."""


def until(env: dict[str, str], code: int, *extra: str) -> str:
    """Ask until `legwave health` exits with `code`; what it said then."""
    said = ""
    for _ in range(ASKS):
        got, said = health(env, *extra)
        if got == code:
            return said
        time.sleep(0.2)
    raise AssertionError(f"legwave health never exited {code} in {ASKS} asks: {said}")


@pytest.fixture
def env(broker: Mosquitto, tmp_path: Path) -> dict[str, str]:
    # a short keepalive: the agent notices a vanished broker within seconds
    return env_for(broker, tmp_path, LEGWAVE_MQTT__KEEPALIVE_S="2")


def start(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    with (tmp_path / "agent.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "bridge.cli", "run"], env=env, stderr=log)


@pytest.fixture
def agent(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(env, tmp_path)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


def test_a_frozen_agent_is_unhealthy_and_healthy_again_once_it_runs(
    agent: subprocess.Popen[bytes], env: dict[str, str]
) -> None:
    assert until(env, 0) == "online"
    agent.send_signal(signal.SIGSTOP)  # its socket still accepts; nothing answers
    code, said = health(env)
    assert code == 1
    assert said.startswith("offline: no agent answers in") and "timed out" in said, said
    agent.send_signal(signal.SIGCONT)
    assert until(env, 0) == "online"


def test_a_lost_broker_makes_it_unhealthy_until_the_agent_is_back_on_it(
    agent: subprocess.Popen[bytes], env: dict[str, str], broker: Mosquitto
) -> None:
    until(env, 0)
    broker.kill()
    assert until(env, 1) == "offline: not connected to the broker"
    assert agent.poll() is None  # the agent itself runs on, and the device with it
    broker.start()
    assert until(env, 0) == "online"
    assert until(env, 0, "--broker") == "online"  # and says so on the broker again


def test_after_a_crash_the_socket_left_behind_answers_nothing_and_a_restart_replaces_it(
    agent: subprocess.Popen[bytes], env: dict[str, str], tmp_path: Path
) -> None:
    until(env, 0)
    agent.kill()
    agent.wait(timeout=10)
    assert (tmp_path / "state" / SOCKET_NAME).exists()
    code, said = health(env)
    assert code == 1 and said.startswith("offline: no agent answers in"), said
    again = start(env, tmp_path)
    try:
        assert until(env, 0) == "online"
    finally:
        again.terminate()
        assert again.wait(timeout=HANG_GUARD_S) == 0
    assert not (tmp_path / "state" / SOCKET_NAME).exists()  # a clean exit takes it away


def test_the_healthcheck_loads_no_settings_model_and_no_mqtt_client(
    agent: subprocess.Popen[bytes], env: dict[str, str]
) -> None:
    until(env, 0)
    probe = (
        "import json, sys\n"
        "from bridge.cli import main\n"
        "code = main(['health'])\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    said, modules = done.stdout.splitlines()
    code, loaded = json.loads(modules)
    assert (said, code) == ("online", 0)
    heavy = {"pydantic", "pydantic_settings", "aiomqtt", "paho", "asyncio", "yaml", "device"}
    assert heavy.isdisjoint(name.split(".")[0] for name in loaded)
