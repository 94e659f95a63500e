"""The compose stack's mosquitto, run here with the same entrypoint, ACL and configuration."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from bridge.broker import free_port, port_open
from bridge.registrar import Registrar
from tests.integration.conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "mosquitto"
DEVICE, DEVICE_PW, HA_PW = "legwave_demo", "device-secret", "ha-secret"
REGISTRAR_PW = "registrar-secret"

ACCOUNTS = {
    "device": (DEVICE, DEVICE_PW),
    "homeassistant": ("homeassistant", HA_PW),
    "registrar": ("registrar", REGISTRAR_PW),
}

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
        "REGISTRAR_MQTT_PASSWORD": REGISTRAR_PW,
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
                async with asyncio.timeout(0.5):
                    async for m in obs.messages:
                        if m.topic.value == topic and m.payload == b"probe":
                            return True
            except TimeoutError:
                return False
        return False

    return asyncio.run(run())


def _every_topic() -> list[tuple[str, str, bool]]:
    """From the MQTT reference's own table: the device writes what goes out, Home Assistant
    writes what comes in, and neither writes the other's (a topic added without its ACL line
    fails here, as selftest, stats, diagnostics and update once did)."""
    from bridge.codec import Topics
    from bridge.mqtt_reference import TOPICS

    topics = Topics(f"legwave/{DEVICE}")
    cases = []
    for name, direction, _ in TOPICS:
        topic = getattr(topics, name)
        cases.append(("device", topic, direction == "out"))
        if name != "availability":  # Home Assistant never says a device is online
            cases.append(("homeassistant", topic, direction == "in"))
    return cases


@pytest.mark.parametrize(("who", "topic", "allowed"), _every_topic())
def test_each_topic_of_the_reference_is_written_by_its_side_only(
    broker: int, who: str, topic: str, allowed: bool
) -> None:
    user, password = ACCOUNTS[who]
    assert delivered(broker, user, password, topic) is allowed


@pytest.mark.parametrize(
    ("who", "topic", "allowed"),
    [
        ("device", f"legwave/{DEVICE}/state", True),
        ("device", f"legwave/{DEVICE}/availability", True),
        ("device", f"legwave/{DEVICE}/event", True),
        ("device", f"legwave/{DEVICE}/discovery", True),  # for the registrar to check
        # no device publishes discovery itself: it could point at another device's topics
        ("device", f"homeassistant/device/{DEVICE}/config", False),
        ("device", f"homeassistant/button/{DEVICE}/stop/config", False),
        ("device", f"legwave/{DEVICE}/set", False),  # a device does not command itself
        ("device", f"legwave/{DEVICE}/power", False),
        ("device", "legwave/other_device/state", False),  # nor speak for another device
        ("device", "homeassistant/device/other_device/config", False),
        ("homeassistant", f"legwave/{DEVICE}/set", True),
        ("homeassistant", f"legwave/{DEVICE}/power", True),
        ("homeassistant", f"legwave/{DEVICE}/get", True),
        ("homeassistant", f"legwave/{DEVICE}/state", False),  # Home Assistant never fakes state
        ("homeassistant", f"legwave/{DEVICE}/availability", False),
        ("homeassistant", f"homeassistant/device/{DEVICE}/config", False),
        ("homeassistant", f"legwave/{DEVICE}/discovery", False),
        ("registrar", f"homeassistant/device/{DEVICE}/config", True),
        ("registrar", f"legwave/{DEVICE}/set", False),
        ("registrar", f"legwave/{DEVICE}/discovery", False),
    ],
)
def test_the_acl_grants_and_refuses(broker: int, who: str, topic: str, allowed: bool) -> None:
    user, password = ACCOUNTS[who]
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


def settings_for(user: str, password: str, tmp_path: Path, port: int, **extra: Any) -> Any:
    from bridge.config import load_settings

    return load_settings(
        None,
        state_dir=tmp_path / f"state-{user}",
        mqtt={"host": "127.0.0.1", "port": port, "username": user, "password": password},
        **extra,
    )


@asynccontextmanager
async def registrar_running(port: int, tmp_path: Path) -> AsyncIterator[Registrar]:
    registrar = Registrar(
        settings=settings_for("registrar", REGISTRAR_PW, tmp_path, port),
        host="127.0.0.1",
        port=port,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(registrar.run(stop))
    try:
        await asyncio.wait_for(registrar.ready.wait(), 10)
        yield registrar
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_the_agent_and_the_registrar_work_inside_the_acl(broker: int, tmp_path: Path) -> None:
    from bridge.discovery import device_payload
    from tests.integration.conftest import running_agent

    settings = settings_for(
        DEVICE,
        DEVICE_PW,
        tmp_path,
        broker,
        device_id=DEVICE,
        homeassistant={"discovery": "registrar"},
    )

    async def scenario() -> None:
        async with (
            aiomqtt.Client("127.0.0.1", broker, username="homeassistant", password=HA_PW) as ha,
            registrar_running(broker, tmp_path),
            running_agent(settings) as agent,
        ):
            await ha.subscribe("homeassistant/#", qos=1)
            await ha.subscribe(f"legwave/{DEVICE}/#", qos=1)
            await asyncio.wait_for(agent.connected.wait(), 10)
            await asyncio.wait_for(agent.power_line_connected.wait(), 10)
            await ha.publish(f"legwave/{DEVICE}/set", b'{"intensity": 5, "transaction": 1}', qos=1)
            await ha.publish(f"legwave/{DEVICE}/power", b'{"action": "vent"}', qos=1)
            seen: dict[str, bytes] = {}
            async with asyncio.timeout(10):
                async for m in ha.messages:
                    assert isinstance(m.payload, bytes)
                    seen[m.topic.value.rsplit("/", 1)[-1]] = m.payload
                    if {"config", "availability", "state", "response"} <= set(seen):
                        break
            # the registrar passed the device's discovery on, as it was
            assert json.loads(seen["config"]) == device_payload(agent.info)
            assert agent.massager.settings.intensity == 5  # Home Assistant's command got through
            assert agent.stats.urgent == 1  # and its vent, on the power line

    asyncio.run(scenario())


def test_a_device_cannot_make_home_assistant_drive_another_device(
    broker: int, tmp_path: Path
) -> None:
    """The attack: a device's own discovery whose stop button is another device's `…/set`."""
    from bridge.discovery import DeviceInfo, device_payload

    info = DeviceInfo(
        device_id=DEVICE, base_topic=f"legwave/{DEVICE}", zones=("foot",), version="0"
    )
    hijack = device_payload(info)
    hijack["components"][f"{DEVICE}_stop"]["command_topic"] = "legwave/bedroom/set"
    hijack["components"][f"{DEVICE}_stop"]["payload_press"] = '{"action": "start"}'
    body = json.dumps(hijack).encode()

    async def scenario() -> list[bytes]:
        async with (
            aiomqtt.Client("127.0.0.1", broker, username="homeassistant", password=HA_PW) as ha,
            registrar_running(broker, tmp_path) as registrar,
            aiomqtt.Client("127.0.0.1", broker, username=DEVICE, password=DEVICE_PW) as device,
        ):
            await ha.subscribe("homeassistant/#", qos=1)
            # directly: the ACL drops it; through the registrar: refused, with the reason
            refused = registrar.stats.refused
            await device.publish(f"homeassistant/device/{DEVICE}/config", body, qos=1)
            await device.publish(f"legwave/{DEVICE}/discovery", body, qos=1, retain=True)
            await eventually(lambda: registrar.stats.refused > refused, 10, "refused")
            seen = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    async for m in ha.messages:
                        assert isinstance(m.payload, bytes)
                        seen.append(m.payload)
            await device.publish(f"legwave/{DEVICE}/discovery", b"", qos=1, retain=True)
            return seen

    seen = asyncio.run(scenario())
    assert not [p for p in seen if b"legwave/bedroom/set" in p]
