"""`legwave run` as a process, driven by `legwave ctl`, `remove` and a password-protected broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from bridge.broker import Mosquitto, free_port, port_open
from bridge.cli import main

DEVICE = "clidev"
BASE = f"legwave/{DEVICE}"


def env_for(
    broker: Mosquitto | int, tmp_path: Path, *, device: str = DEVICE, **extra: str
) -> dict[str, str]:
    """Environment for a `legwave run` process against a broker (or a port) on 127.0.0.1."""
    port = broker if isinstance(broker, int) else broker.port
    return {
        **os.environ,
        "LEGWAVE_DEVICE_ID": device,
        "LEGWAVE_STATE_DIR": str(tmp_path / "state"),
        "LEGWAVE_MQTT__HOST": "127.0.0.1",
        "LEGWAVE_MQTT__PORT": str(port),
        **extra,
    }


def retained(port: int, topic: str, wait: float = 1.0, **auth: str) -> dict[str, bytes]:
    async def collect() -> dict[str, bytes]:
        seen: dict[str, bytes] = {}
        async with aiomqtt.Client("127.0.0.1", port, **auth) as c:  # type: ignore[arg-type]
            await c.subscribe(topic, qos=1)
            try:
                async with asyncio.timeout(wait):
                    async for m in c.messages:
                        if m.retain and isinstance(m.payload, bytes):
                            seen[m.topic.value] = m.payload
            except TimeoutError:
                pass
        return seen

    return asyncio.run(collect())


def wait_online(port: int, **auth: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            seen = retained(port, f"{BASE}/availability", 0.3, **auth)
        except aiomqtt.MqttError:  # the broker may not listen yet
            time.sleep(0.1)
            continue
        if seen.get(f"{BASE}/availability") == b"online":
            return
    raise AssertionError("the agent never came online")


@pytest.fixture
def agent_process(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[subprocess.Popen[bytes]]:
    env = env_for(broker, tmp_path)
    for key, value in env.items():
        if key.startswith("LEGWAVE_"):
            monkeypatch.setenv(key, value)
    # The log goes to a file: a pipe nobody reads would block a chatty agent.
    with (tmp_path / "agent.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run"], env=env, stderr=log)
        try:
            wait_online(broker.port)
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def test_ctl_start_stop_and_a_refused_command(
    agent_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ctl", "start", "--preset", "first_use", "--duration-min", "5"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["status"] == "ok" and reply["state"]["status"] == "fit_check"
    assert reply["state"]["preset"] == "first_use" and reply["state"]["duration_min"] == 5
    assert main(["ctl", "set", "--intensity", "9"]) == 1
    reply = json.loads(capsys.readouterr().out)
    assert reply["error"]["field"] == "intensity"
    assert main(["ctl", "stop"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["status"] == "venting"


def test_watch_once_draws_the_live_state(
    agent_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["watch", "--once"]) == 0
    screen = capsys.readouterr().out
    assert screen.startswith("legwave · idle · online")  # not "?": availability comes first
    assert "upper_calf" in screen and "mmHg" in screen


def test_sigterm_says_offline_and_remove_clears_everything(
    agent_process: subprocess.Popen[bytes], broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    assert f"homeassistant/device/{DEVICE}/config" in retained(broker.port, "homeassistant/#")
    assert main(["health"]) == 0
    assert capsys.readouterr().out.strip() == "online"
    assert main(["health", "--broker"]) == 0
    assert capsys.readouterr().out.strip() == "online"
    agent_process.terminate()
    assert agent_process.wait(timeout=10) == 0
    assert main(["health"]) == 1
    assert capsys.readouterr().out.startswith("offline: no agent answers in")
    assert main(["health", "--broker"]) == 1
    assert capsys.readouterr().out.strip() == "offline"
    assert retained(broker.port, f"{BASE}/availability")[f"{BASE}/availability"] == b"offline"
    assert main(["remove"]) == 0
    assert "cleared" in capsys.readouterr().out
    assert retained(broker.port, "#") == {}


def test_ctl_without_an_agent_times_out(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env_for(broker, tmp_path).items():
        if key.startswith("LEGWAVE_"):
            monkeypatch.setenv(key, value)
    assert main(["ctl", "stop", "--timeout", "0.5"]) == 3


def run_until_online(env: dict[str, str], port: int, log_path: Path) -> str:
    """Start `legwave run`, wait for `online` on `port`, stop it; return its log."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run"], env=env, stderr=log)
        try:
            wait_online(port)
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
    return log_path.read_text()


def test_with_no_broker_configured_run_starts_its_own(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LEGWAVE_DEVICE_ID": DEVICE,
        "LEGWAVE_STATE_DIR": str(tmp_path / "state"),
        "LEGWAVE_MQTT__PORT": str(port),
    }
    env.pop("LEGWAVE_MQTT__HOST", None)
    log = run_until_online(env, port, tmp_path / "agent.log")
    assert f"started an embedded mosquitto on 127.0.0.1:{port}" in log
    assert not port_open(port)  # and it stops with the agent


def test_with_no_broker_configured_run_uses_one_already_listening(
    broker: Mosquitto, tmp_path: Path
) -> None:
    env = env_for(broker, tmp_path)
    env.pop("LEGWAVE_MQTT__HOST")
    log = run_until_online(env, broker.port, tmp_path / "agent.log")
    assert f"using the one on 127.0.0.1:{broker.port}" in log
    assert port_open(broker.port)  # someone else's broker keeps running


def test_username_and_password(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "legwave", "s3cret"], check=True)
    config = f"allow_anonymous false\npassword_file {passwd}\n"
    broker = Mosquitto(folder=tmp_path, config=config).start()
    try:
        env = env_for(
            broker, tmp_path, LEGWAVE_MQTT__USERNAME="legwave", LEGWAVE_MQTT__PASSWORD="s3cret"
        )
        log_path = tmp_path / "agent.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bridge.cli", "-v", "run"], env=env, stderr=log
            )
            try:
                wait_online(broker.port, username="legwave", password="s3cret")
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        text = log_path.read_text()
        assert "connected to the broker" in text
        assert "s3cret" not in text  # not even at debug level
        with pytest.raises(aiomqtt.MqttError):
            retained(broker.port, "#")  # and the broker really refuses strangers
    finally:
        broker.stop()


def test_ctl_says_at_once_when_the_device_says_offline_and_sends_nothing(
    broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env_for(broker, tmp_path).items():
        if key.startswith("LEGWAVE_"):
            monkeypatch.setenv(key, value)

    async def offline_and_listen() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as c:
            await c.publish(f"{BASE}/availability", b"offline", qos=1, retain=True)

    asyncio.run(offline_and_listen())
    # the offline path, not the timeout's: that one says "no response"
    assert main(["ctl", "start", "--timeout", "120"]) == 3
    assert "says offline: is legwave run running? (nothing was sent)" in capsys.readouterr().err
    # nothing went to the device: a command there would run when it came back
    assert f"{BASE}/set" not in retained(broker.port, f"{BASE}/#")


@pytest.mark.parametrize("command", [["discovery"], ["simulate", "--json", "--duration-min", "5"]])
def test_a_reader_that_goes_away_gets_no_traceback(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "LEGWAVE_STATE_DIR": str(tmp_path / "state"), "LEGWAVE_DEVICE_ID": "x1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `| head` does once it has what it wants, before anything is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err
