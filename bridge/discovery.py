"""Home Assistant MQTT discovery payloads, generated from the entity table (docs/home-assistant.md).

Device-based discovery by default: one retained message on
``<prefix>/device/<device_id>/config`` holding every component. ``per_component`` publishes one
message per entity on ``<prefix>/<platform>/<device_id>/<key>/config`` for older Home Assistant.
Full key names, full topics (no ``~``), `default_entity_id` (never `object_id`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from bridge.codec import Topics
from bridge.entities import Entity, entity_table

DiscoveryStyle = Literal["device", "per_component", "registrar"]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Who the device is, for Home Assistant."""

    device_id: str
    base_topic: str
    zones: tuple[str, ...]
    version: str
    prefix: str = "homeassistant"
    name: str = "Leg Massager"
    manufacturer: str = "legwave"
    model: str = "Air-compression leg massager"
    suggested_area: str | None = "Bedroom"
    updates: bool = False  # an update entity (a release source is configured)
    installs: bool = False  # it installs the release, too (update.install)

    @property
    def topics(self) -> Topics:
        """The device's MQTT topics."""
        return Topics(self.base_topic)

    @property
    def device_topic(self) -> str:
        """The device-based discovery topic."""
        return f"{self.prefix}/device/{self.device_id}/config"

    @property
    def draft_topic(self) -> str:
        """Where the device puts its discovery for `legwave registrar` to check and pass on."""
        return f"{self.base_topic}/discovery"

    def component_topic(self, entity: Entity) -> str:
        """The per-component discovery topic of `entity`."""
        return f"{self.prefix}/{entity.platform}/{self.device_id}/{entity.key}/config"


def _device_block(info: DeviceInfo) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [info.device_id],
        "name": info.name,
        "manufacturer": info.manufacturer,
        "model": info.model,
        "sw_version": info.version,
    }
    if info.suggested_area:
        block["suggested_area"] = info.suggested_area
    return block


def _origin(info: DeviceInfo) -> dict[str, Any]:
    return {"name": "legwave", "sw_version": info.version}


_SPELLED = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d"})


def entity_slug(name: str) -> str:
    """`name` as Home Assistant makes an entity id of it: "Jürgen's" → jurgen_s."""
    plain = unicodedata.normalize("NFKD", name.lower().translate(_SPELLED))
    ascii_only = plain.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_only).strip("_")


def default_entity_id(info: DeviceInfo, entity: Entity) -> str:
    """The entity id Home Assistant should use first (it may add a suffix on a clash).

    The device's name, then the entity's key: switch.leg_massager, sensor.leg_massager_status;
    a device named "Bedroom massager" gets switch.bedroom_massager.
    """
    suffix = "" if entity.key == "power" else f"_{entity.key}"
    return f"{entity.platform}.{entity_slug(info.name)}{suffix}"


def component_config(info: DeviceInfo, entity: Entity) -> dict[str, Any]:
    """One entity's configuration, topics included (without device, origin, availability)."""
    topics = info.topics
    config: dict[str, Any] = {
        "platform": entity.platform,
        "unique_id": f"{info.device_id}_{entity.key}",
        "default_entity_id": default_entity_id(info, entity),
        "name": entity.name,
    }
    if entity.platform not in ("button", "notify"):  # they only send
        config["state_topic"] = getattr(topics, entity.reads)
    if entity.reads == "selftest":  # the whole report as attributes
        config["json_attributes_topic"] = topics.selftest
    if entity.commands:
        config["command_topic"] = topics.power if entity.power_line else topics.set
    if entity.reads == "update" and info.installs:
        config["command_topic"] = topics.update_install
        config["payload_install"] = "install"
    if "json_attributes_template" in entity.options:
        config["json_attributes_topic"] = config["state_topic"]
    config.update(entity.options)
    return config


def device_payload(info: DeviceInfo) -> dict[str, Any]:
    """The device-based discovery payload."""
    return {
        "device": _device_block(info),
        "origin": _origin(info),
        "availability_topic": info.topics.availability,
        "qos": 1,
        "components": {
            f"{info.device_id}_{e.key}": component_config(info, e)
            for e in entity_table(list(info.zones), updates=info.updates)
        },
    }


def component_payloads(info: DeviceInfo) -> dict[str, dict[str, Any]]:
    """Per-component discovery payloads by topic (for Home Assistant before device discovery)."""
    out: dict[str, dict[str, Any]] = {}
    for entity in entity_table(list(info.zones), updates=info.updates):
        config = component_config(info, entity)
        del config["platform"]
        config.update(
            device=_device_block(info),
            origin=_origin(info),
            availability_topic=info.topics.availability,
            qos=1,
        )
        out[info.component_topic(entity)] = config
    return out


def discovery_messages(info: DeviceInfo, style: DiscoveryStyle) -> list[tuple[str, bytes]]:
    """The retained (topic, payload) pairs to publish for `style`.

    ``registrar``: the device-based payload on the device's own `…/discovery` topic, for
    `legwave registrar` to check and publish under the discovery prefix (bridge/registrar.py).
    """
    if style in ("device", "registrar"):
        topic = info.device_topic if style == "device" else info.draft_topic
        return [(topic, json.dumps(device_payload(info), allow_nan=False).encode())]
    return [
        (topic, json.dumps(p, allow_nan=False).encode())
        for topic, p in component_payloads(info).items()
    ]


def owned_retained_topics(info: DeviceInfo) -> list[str]:
    """Every retained topic the device may own, in both discovery styles (for `legwave remove`)."""
    topics = info.topics
    return [
        info.draft_topic,
        info.device_topic,
        *component_payloads(info),
        topics.availability,
        topics.state,
        topics.selftest,
        topics.stats,
        topics.diagnostics,
        topics.update,
    ]
