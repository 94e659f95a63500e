"""`legwave registrar`: announces devices to Home Assistant only with topics that are theirs.

Home Assistant follows a discovery payload wherever it points. A device account that may
publish discovery could announce a button whose command topic is another device's `…/set`, and
Home Assistant would then drive the other device for it. No broker ACL can look inside a
payload, so in the compose stack devices may not publish discovery at all: each puts its payload
on its own `legwave/<id>/discovery` (which only its account may write), and the registrar, with
an account of its own, checks it and publishes it as `<prefix>/device/<id>/config`.

A payload passes when it is a device-based discovery payload of device `<id>` (its
identifiers, and every unique id its own) whose every topic is one of `legwave/<id>/`'s own.
Anything else is refused with one log line naming the device and the reason, and whatever the
registrar published for that device before stays (a device may still remove itself with an
empty payload).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.codec import DEVICE_ID, Topics
from bridge.outbox import Message
from bridge.transport import Client, Link, keep_connected, messages

if TYPE_CHECKING:
    from bridge.config import AgentSettings

log = logging.getLogger(__name__)

DRAFTS = "legwave/+/discovery"
MAX_DRAFT_BYTES = 64 * 1024


class DraftRefusedError(ValueError):
    """A discovery payload that may not be passed to Home Assistant; the message says why."""


def own_topics(device_id: str) -> frozenset[str]:
    """Every topic a legwave device's entities may name."""
    t = Topics(f"legwave/{device_id}")
    return frozenset(
        {
            t.availability,
            t.state,
            t.telemetry,
            t.event,
            t.set,
            t.power,
            t.get,
            t.response,
            t.selftest,
            t.stats,
            t.diagnostics,
            t.update,
        }
    )


def check_draft(device_id: str, payload: bytes) -> dict[str, Any]:
    """The payload, if it may go to Home Assistant as device `device_id`'s discovery.

    Raises:
        DraftRefusedError: it names a topic not the device's own, or another device, or is not
            a device-based discovery payload.
    """
    if not DEVICE_ID.match(device_id):
        raise DraftRefusedError(f"{device_id!r} is not a device id")
    if len(payload) > MAX_DRAFT_BYTES:
        raise DraftRefusedError(f"{len(payload)} bytes; at most {MAX_DRAFT_BYTES}")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DraftRefusedError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("components"), dict):
        raise DraftRefusedError("not a device-based discovery payload (no components)")
    device = data.get("device")
    if not isinstance(device, dict) or device.get("identifiers") != [device_id]:
        raise DraftRefusedError(f"device.identifiers must be [{device_id!r}]")
    allowed = own_topics(device_id)
    _check_topics("", data, allowed)
    for key, component in data["components"].items():
        if not isinstance(component, dict):
            raise DraftRefusedError(f"components.{key}: not an object")
        unique_id = component.get("unique_id")
        if key != unique_id or not str(unique_id).startswith(f"{device_id}_"):
            raise DraftRefusedError(f"components.{key}: unique id not {device_id}_…")
        _check_topics(f"components.{key}.", component, allowed)
    return data


def _check_topics(where: str, block: dict[str, Any], allowed: frozenset[str]) -> None:
    for name, value in block.items():
        if name in ("~", "base_topic"):
            # the abbreviation would make every relative topic another device's
            raise DraftRefusedError(f"{where}{name}: no base topic abbreviation")
        if name.endswith(("_topic", "_t")) or name in ("topic", "t"):
            if value not in allowed:
                raise DraftRefusedError(f"{where}{name}: {value!r} is not this device's topic")
        elif name == "availability" and isinstance(value, list):
            for i, entry in enumerate(value):
                if not isinstance(entry, dict):
                    raise DraftRefusedError(f"{where}availability[{i}]: not an object")
                _check_topics(f"{where}availability[{i}].", entry, allowed)


@dataclass
class RegistrarStats:
    """What the registrar did, for tests and logs."""

    passed: int = 0
    refused: int = 0
    removed: int = 0


class Registrar:
    """Checks devices' discovery drafts and publishes the good ones for Home Assistant.

    Args:
        settings: the broker (with the registrar's own account) and the discovery prefix.
        host: broker host.
        port: broker port.
    """

    def __init__(self, *, settings: AgentSettings, host: str, port: int) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.stats = RegistrarStats()
        self.ready = asyncio.Event()  # connected and watching
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not secrets

    def config_topic(self, device_id: str) -> str:
        """Where Home Assistant reads device `device_id`'s discovery."""
        return f"{self.settings.homeassistant.prefix}/device/{device_id}/config"

    def verdict(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        """What to publish for a draft on `topic`, or None (refused, and logged)."""
        parts = topic.split("/")
        device_id = parts[1] if len(parts) == 3 else ""
        if not payload:
            self.stats.removed += 1
            log.info("device %s removed its discovery", device_id)
            return self.config_topic(device_id), b""
        try:
            check_draft(device_id, payload)
        except DraftRefusedError as exc:
            self.stats.refused += 1
            log.error("refused the discovery of device %r: %s", device_id, exc)
            return None
        self.stats.passed += 1
        log.info("passed on the discovery of device %s", device_id)
        return self.config_topic(device_id), payload

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, connecting again whenever the broker goes."""
        link = Link(self.settings.mqtt, self.host, self.port)
        await keep_connected(
            link,
            stop,
            lambda client: self._session(link, client, stop),
            options=dict,
            rng=self._rng,
            label=" (registrar)",
            on_closed=self.ready.clear,
        )

    async def _session(self, link: Link, client: Client, stop: asyncio.Event) -> None:
        async with asyncio.timeout(10.0):
            await client.subscribe(DRAFTS, qos=1)
        log.info("registrar on %s, watching %s", link.address, DRAFTS)
        self.ready.set()
        serving = asyncio.ensure_future(self._serve(link, client))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not serving.done():
                # the disconnect that follows ends it (a cancellation alone can be swallowed
                # inside a publish in Python 3.11: see bridge.transport)
                serving.cancel()
                serving.add_done_callback(lambda t: t.cancelled() or t.exception())
        if serving.done() and not serving.cancelled():
            serving.result()  # a lost connection: raised for keep_connected to report

    async def _serve(self, link: Link, client: Client) -> None:
        async for message in messages(client):
            outcome = self.verdict(message.topic, message.payload)
            if outcome is not None:
                topic, body = outcome
                await link.publish(client, Message(topic, body, qos=1, retain=True), ack_within_s=5)
