"""Who is the device on the broker: nobody can take its client id, and it never runs twice.

The broker closes the older of two connections with one client id. With a guessable id
(`legwave-<device id>`) anyone who could connect could kick the agent off at will, each time
firing its last will, and two agents configured with the same device id kicked each other off
dozens of times a second.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from bridge.broker import Mosquitto
from tests.faults.conftest import BASE, DEVICE, Process, agent_env, eventually, wait_until
from tests.integration.conftest import agent_settings, observer, running_agent

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


def run_to_the_end(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`legwave run` that is expected to refuse: its exit code and what it said."""
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_old_guessable_client_id_kicks_nobody_off(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            running_agent(agent_settings(broker, tmp_path)) as agent,
            observer(broker.port, "legwave/lwtest/availability") as obs,
        ):
            await asyncio.wait_for(agent.connected.wait(), 15)
            assert agent.client_id.startswith("legwave-lwtest-")
            assert len(agent.client_id) > len("legwave-lwtest-") + 12  # a token nobody guesses
            for _ in range(3):
                async with aiomqtt.Client("127.0.0.1", broker.port, identifier="legwave-lwtest"):
                    await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            assert agent.stats.connects == 1
            assert b"offline" not in [p for _, p, _ in obs.seen]  # no will fired

    asyncio.run(scenario())


def test_a_client_that_takes_the_agent_s_id_is_reported_and_the_id_changes(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_agent(agent_settings(broker, tmp_path)) as agent:
            await asyncio.wait_for(agent.connected.wait(), 15)
            await asyncio.wait_for(agent.power_line_connected.wait(), 15)
            for i in range(3):
                stolen = agent.client_id  # someone learned it (from the broker's log, say)
                async with aiomqtt.Client("127.0.0.1", broker.port, identifier=stolen):
                    await eventually(lambda n=i: agent.stats.takeovers > n, 15, "takeover seen")
                    assert agent.client_id != stolen  # it came back under a new one
                    await asyncio.wait_for(agent.connected.wait(), 15)
            # the thief's id is worth nothing now
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier=stolen):
                await asyncio.sleep(1.5)
            assert agent.stats.takeovers == 3 and agent.connected.is_set()

    with caplog.at_level(logging.ERROR, logger="bridge.agent"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if "client id" in r.getMessage()]
    assert len(lines) == 3
    assert "(3 times in the last 600 s)" in lines[-1]
    assert "another client is probably using this device's client id" in lines[-1]


def test_a_second_agent_with_the_same_device_id_refuses_to_run(
    broker: Mosquitto, tmp_path: Path
) -> None:
    first = Process(["run"], agent_env(broker.port, tmp_path), tmp_path / "first.log")
    try:

        async def online() -> None:
            async with observer(broker.port, f"{BASE}/availability") as obs:
                await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online", 30)

        asyncio.run(online())
        # the same device id, another state directory (another machine, say)
        elsewhere = tmp_path / "elsewhere"
        env = agent_env(broker.port, elsewhere, LEGWAVE_DEVICE_ID=DEVICE)
        second = run_to_the_end(env)
        assert second.returncode == 2
        assert f"another legwave agent already serves device {DEVICE}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.proc.poll() is None
        log = first.log()
        assert log.count("connected to the broker at") == 2  # main and power line: no flapping
        assert "another legwave agent connected with device id" in log

        async def still_online() -> None:
            async with observer(broker.port, f"{BASE}/availability") as obs:
                await asyncio.sleep(0.5)
                assert [p for _, p, _ in obs.seen][-1:] == [b"online"]

        asyncio.run(still_online())
    finally:
        assert first.stop() == 0


def test_one_state_directory_runs_one_agent(broker: Mosquitto, tmp_path: Path) -> None:
    env = agent_env(broker.port, tmp_path)
    first = Process(["run"], env, tmp_path / "first.log")
    try:
        wait_until(lambda: (tmp_path / "state" / "agent.lock").exists(), 30, "first started")
        second = run_to_the_end(env)
        assert second.returncode == 2
        assert "is running with the state directory" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr
        assert first.proc.poll() is None
    finally:
        assert first.stop() == 0
