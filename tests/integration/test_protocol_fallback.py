"""A broker that refuses MQTT 5 (amqtt 0.12 does): the agent and the CLI fall back to 3.1.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.broker import free_port, port_open
from bridge.config import MqttSettings
from bridge.transport import Link
from tests.integration.test_cli_agent import env_for

AMQTT = Path(sys.executable).with_name("amqtt")
pytestmark = pytest.mark.skipif(not AMQTT.exists(), reason="amqtt is not installed")


@pytest.fixture
def v311_broker(tmp_path: Path) -> Iterator[int]:
    """amqtt on a free port: it answers an MQTT 5 CONNECT with 'unsupported protocol version'."""
    port = free_port()
    config = tmp_path / "amqtt.yaml"
    config.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    with (tmp_path / "amqtt.log").open("wb") as log:
        proc = subprocess.Popen([str(AMQTT), "-c", str(config)], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while not port_open(port):
                assert proc.poll() is None, (tmp_path / "amqtt.log").read_text()
                assert time.monotonic() < deadline, "amqtt did not start"
                time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_a_link_falls_back_to_mqtt_3_1_1_once_and_stays_there(
    v311_broker: int, caplog: pytest.LogCaptureFixture
) -> None:
    link = Link(MqttSettings(protocol="5", connect_timeout_s=2), "127.0.0.1", v311_broker)

    async def connect_twice() -> None:
        for _ in range(2):
            async with link.session():
                pass

    asyncio.run(connect_twice())
    assert link.v5 is False
    said = [r.getMessage() for r in caplog.records if "using MQTT 3.1.1" in r.getMessage()]
    assert len(said) == 1, said
    assert "mqtt.protocol: '3.1.1'" in said[0]


def test_the_agent_serves_a_broker_that_refuses_mqtt_5(v311_broker: int, tmp_path: Path) -> None:
    # a short connect timeout: each command line call waits it out once before it falls back
    env = env_for(v311_broker, tmp_path, LEGWAVE_MQTT__CONNECT_TIMEOUT_S="2")
    cli = [sys.executable, "-m", "bridge.cli"]
    with (tmp_path / "agent.log").open("wb") as log:
        agent = subprocess.Popen([*cli, "run"], env=env, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while True:
                health = subprocess.run(
                    [*cli, "health", "--broker"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if health.returncode == 0:
                    break
                assert agent.poll() is None, (tmp_path / "agent.log").read_text()
                assert time.monotonic() < deadline, health.stdout + health.stderr
                time.sleep(0.2)
            ctl = subprocess.run(
                [*cli, "ctl", "start", "--preset", "recovery"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert ctl.returncode == 0, ctl.stdout + ctl.stderr
            answer = json.loads(ctl.stdout)
            assert answer["state"]["status"] in ("fit_check", "running"), answer
            assert "using MQTT 3.1.1" in ctl.stderr
            stop = subprocess.run(
                [*cli, "ctl", "stop"], env=env, capture_output=True, text=True, check=False
            )
            assert stop.returncode == 0, stop.stdout + stop.stderr
        finally:
            agent.terminate()
            agent.wait(timeout=20)
    log_text = (tmp_path / "agent.log").read_text()
    # said once, though both connections found it out
    assert log_text.count("using MQTT 3.1.1 (set mqtt.protocol: '3.1.1'") == 1, log_text
