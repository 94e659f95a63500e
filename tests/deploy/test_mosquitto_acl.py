"""The compose stack's mosquitto, run here with the same entrypoint, ACL and configuration."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from bridge.broker import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "mosquitto"
DEVICE, DEVICE_PW, HA_PW = "legwave_demo", "device-secret", "ha-secret"

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("acl")
    port = free_port()
    # The repository's config with only the container paths and the port replaced.
    conf = (DEPLOY / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/mosquitto/data/", f"{folder}/").replace(
        "/mosquitto/config/acl", str(DEPLOY / "acl")
    )
    conf = conf.replace("log_dest stdout", f"log_dest file {folder}/mosquitto.log")
    if os.geteuid() == 0:
        conf = "user root\n" + conf
    (folder / "mosquitto.conf").write_text(conf)
    env = {
        **os.environ,
        "MOSQUITTO_CONF": str(folder / "mosquitto.conf"),
        "MOSQUITTO_PASSWD": str(folder / "passwd"),
        "LEGWAVE_DEVICE_ID": DEVICE,
        "LEGWAVE_MQTT_PASSWORD": DEVICE_PW,
        "HA_MQTT_PASSWORD": HA_PW,
        "PATH": os.environ["PATH"] + ":/usr/sbin",
    }
    proc = subprocess.Popen(["/bin/sh", str(DEPLOY / "entrypoint.sh")], env=env)
    deadline = time.monotonic() + 10
    while not port_open(port):
        assert proc.poll() is None, "mosquitto did not start"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=5)


def delivered(port: int, user: str, password: str, topic: str, watch: str = "legwave/#") -> bool:
    """Publish as `user`; does Home Assistant's account (which may read it all) receive it?"""

    async def run() -> bool:
        async with aiomqtt.Client(
            "127.0.0.1", port, username="homeassistant", password=HA_PW
        ) as obs:
            await obs.subscribe(watch, qos=1)
            async with aiomqtt.Client("127.0.0.1", port, username=user, password=password) as c:
                await c.publish(topic, b"probe", qos=1)
            try:
                async with asyncio.timeout(0.7):
                    async for m in obs.messages:
                        if m.topic.value == topic and m.payload == b"probe":
                            return True
            except TimeoutError:
                return False
        return False

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("who", "topic", "allowed"),
    [
        ("device", f"legwave/{DEVICE}/state", True),
        ("device", f"legwave/{DEVICE}/availability", True),
        ("device", f"legwave/{DEVICE}/event", True),
        ("device", f"homeassistant/device/{DEVICE}/config", True),
        ("device", f"legwave/{DEVICE}/set", False),  # a device does not command itself
        ("device", "legwave/other_device/state", False),  # nor speak for another device
        ("device", "homeassistant/device/other_device/config", False),
        ("homeassistant", f"legwave/{DEVICE}/set", True),
        ("homeassistant", f"legwave/{DEVICE}/get", True),
        ("homeassistant", f"legwave/{DEVICE}/state", False),  # Home Assistant never fakes state
        ("homeassistant", f"legwave/{DEVICE}/availability", False),
        ("homeassistant", f"homeassistant/device/{DEVICE}/config", False),
    ],
)
def test_the_acl_grants_and_refuses(broker: int, who: str, topic: str, allowed: bool) -> None:
    user, password = (DEVICE, DEVICE_PW) if who == "device" else ("homeassistant", HA_PW)
    watch = "homeassistant/#" if topic.startswith("homeassistant/") else "legwave/#"
    assert delivered(broker, user, password, topic, watch) is allowed


def test_strangers_and_wrong_passwords_are_refused(broker: int) -> None:
    async def connect(**auth: str) -> None:
        async with aiomqtt.Client("127.0.0.1", broker, **auth):  # type: ignore[arg-type]
            pass

    with pytest.raises(aiomqtt.MqttError):
        asyncio.run(connect())
    with pytest.raises(aiomqtt.MqttError):
        asyncio.run(connect(username=DEVICE, password="guess"))


def test_the_agent_works_inside_the_acl(broker: int, tmp_path: Path) -> None:
    from bridge.config import load_settings
    from tests.integration.conftest import running_agent

    settings = load_settings(
        None,
        device_id=DEVICE,
        state_dir=tmp_path / "state",
        mqtt={"host": "127.0.0.1", "port": broker, "username": DEVICE, "password": DEVICE_PW},
    )

    async def scenario() -> None:
        async with (
            aiomqtt.Client("127.0.0.1", broker, username="homeassistant", password=HA_PW) as ha,
            running_agent(settings) as agent,
        ):
            await ha.subscribe("homeassistant/#", qos=1)
            await ha.subscribe(f"legwave/{DEVICE}/#", qos=1)
            await asyncio.wait_for(agent.connected.wait(), 10)
            await ha.publish(f"legwave/{DEVICE}/set", b'{"intensity": 5, "transaction": 1}', qos=1)
            seen: set[str] = set()
            async with asyncio.timeout(10):
                async for m in ha.messages:
                    seen.add(m.topic.value.rsplit("/", 1)[-1])
                    if {"config", "availability", "state", "response"} <= seen:
                        break
            assert agent.massager.settings.intensity == 5  # Home Assistant's command got through

    asyncio.run(scenario())
