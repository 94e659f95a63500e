"""The command line at its edges: odd states, no broker, a bad folder, a bad number."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiomqtt
import pytest

from bridge.broker import Mosquitto, free_port
from bridge.cli import main

DEVICE = "edgedev"


@pytest.fixture
def device_env(broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mosquitto:
    monkeypatch.setenv("LEGWAVE_DEVICE_ID", DEVICE)
    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LEGWAVE_MQTT__HOST", "127.0.0.1")
    monkeypatch.setenv("LEGWAVE_MQTT__PORT", str(broker.port))
    return broker


def retain(port: int, topic: str, payload: bytes) -> None:
    async def run() -> None:
        async with aiomqtt.Client("127.0.0.1", port) as c:
            await c.publish(topic, payload, qos=1, retain=True)

    asyncio.run(run())


@pytest.mark.parametrize(
    "payload",
    [b"{}", b'{"status": "idle"}', b'{"status": 3, "pressure_mmhg": [1], "heater_c": "hot"}'],
)
def test_watch_once_draws_any_object_the_device_topic_holds(
    device_env: Mosquitto, capsys: pytest.CaptureFixture[str], payload: bytes
) -> None:
    retain(device_env.port, f"legwave/{DEVICE}/state", payload)
    assert main(["watch", "--once", "--timeout", "5"]) == 0
    assert capsys.readouterr().out.startswith("legwave · ")


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"idle"', b"null", b"\xff"])
def test_watch_once_waits_past_what_is_not_a_state(
    device_env: Mosquitto, capsys: pytest.CaptureFixture[str], payload: bytes
) -> None:
    retain(device_env.port, f"legwave/{DEVICE}/state", payload)
    assert main(["watch", "--once", "--timeout", "1"]) == 3
    assert "no state from" in capsys.readouterr().err


def test_remove_without_a_broker_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEGWAVE_DEVICE_ID", DEVICE)
    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LEGWAVE_MQTT__HOST", "127.0.0.1")
    monkeypatch.setenv("LEGWAVE_MQTT__PORT", str(free_port()))
    assert main(["remove"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("legwave: error: cannot reach the broker at 127.0.0.1:")
    assert len(err.strip().splitlines()) == 1


def test_simulate_refuses_a_plot_it_could_not_write_before_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "plot.png"
    args = ["simulate", "--preset", "recovery", "--duration-min", "60", "--plot", str(target)]
    assert main(args) == 2
    out = capsys.readouterr()
    assert "--plot: cannot write into" in out.err
    assert out.out == ""  # refused before the run, not after it: no report
    assert not target.parent.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
@pytest.mark.parametrize("command", [["ctl", "stop"], ["watch", "--once"], ["health"]])
def test_a_timeout_must_be_a_number_of_seconds(
    command: list[str], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--timeout", value])
    assert exit_.value.code == 2
    assert "--timeout" in capsys.readouterr().err


def test_watch_draws_the_last_state_even_when_nothing_follows_it(
    broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    from bridge.config import MqttSettings
    from bridge.watch import watch

    base = f"legwave/{DEVICE}"
    running = {"status": "running", "pressure_mmhg": {"foot": 12.0}}
    stopped = {"status": "idle", "pressure_mmhg": {"foot": 0.0}}

    async def scenario() -> None:
        viewer = asyncio.create_task(
            watch(MqttSettings(), "127.0.0.1", broker.port, base, once=False)
        )
        await asyncio.sleep(0.5)
        async with aiomqtt.Client("127.0.0.1", broker.port) as c:
            await c.publish(f"{base}/state", json.dumps(running).encode(), qos=1)
            await c.publish(f"{base}/telemetry", b'{"pressure_mmhg": {"foot": 55.0}}', qos=1)
            await c.publish(f"{base}/state", json.dumps(stopped).encode(), qos=1)  # a stop
        await asyncio.sleep(1.0)  # nothing else comes: an idle device sends no telemetry
        viewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await viewer

    asyncio.run(scenario())
    last = capsys.readouterr().out.rsplit("\x1b[2J", 1)[-1]
    assert last.startswith("legwave · idle"), last
    assert "  0.0 mmHg" in last and "55.0" not in last  # not the telemetry from before the stop


def test_config_check_names_the_broker_run_will_use(
    broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LEGWAVE_MQTT__HOST", raising=False)
    monkeypatch.setenv("LEGWAVE_MQTT__PORT", str(broker.port))
    assert main(["config", "check"]) == 0
    assert "(none configured: the one already listening there)" in capsys.readouterr().out
    monkeypatch.setenv("LEGWAVE_MQTT__PORT", str(free_port()))
    assert main(["config", "check"]) == 0
    assert "(none configured: legwave run starts its own mosquitto)" in capsys.readouterr().out
