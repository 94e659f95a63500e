"""`legwave ctl`: send one command to a running agent and print its answer."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import TYPE_CHECKING

from bridge.cli.options import (
    add_setting_options,
    broker_address,
    device_info,
    seconds,
    setting_changes,
)
from device.control.massager import Action

if TYPE_CHECKING:
    import argparse

    from bridge.codec import Topics
    from bridge.config import AgentSettings
    from bridge.transport import Client


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ctl` to the command line."""
    parser = sub.add_parser("ctl", help="send a command to a running agent and print the response")
    parser.add_argument("action", choices=[*(a.value for a in Action), "set"])
    add_setting_options(parser)
    parser.add_argument(
        "--timeout", type=seconds, default=5.0, help="seconds to wait for the response"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """0 when the device applied it, 1 when it refused, 3 when there was no answer."""
    return asyncio.run(_ctl(args, settings))


async def _ctl(args: argparse.Namespace, settings: AgentSettings) -> int:
    from bridge.codec import STALE_AFTER_S, Topics, pretty_json
    from bridge.outbox import Message
    from bridge.transport import Link, MqttError, messages

    topics = Topics(device_info(settings).base_topic)
    transaction = uuid.uuid4().hex[:12]
    body: dict[str, object] = {"transaction": transaction, "ts": time.time()}
    if args.action != "set":
        body["action"] = args.action
    if args.preset:
        body["preset"] = args.preset
    body.update(setting_changes(args))
    host, port = broker_address(settings)
    link = Link(settings.mqtt, host, port)
    try:
        async with link.session(identifier=f"legwave-ctl-{transaction}") as client:
            if await _says_offline(client, topics):
                print(
                    f"legwave: error: {topics.base} says offline: is legwave run running? "
                    "(nothing was sent)",
                    file=sys.stderr,
                )
                return 3
            await client.subscribe(topics.response, qos=1)
            # stop and vent take the power line: a flood on `…/set` cannot hold them up
            topic = topics.power if args.action in ("stop", "vent") else topics.set
            # (MQTT 5: the broker drops the command if it cannot deliver it in time)
            command = Message(topic, json.dumps(body).encode(), expiry_s=int(STALE_AFTER_S))
            await link.publish(client, command)
            async with asyncio.timeout(args.timeout):
                async for message in messages(client):
                    try:
                        reply = json.loads(message.payload)
                    except (TypeError, ValueError):
                        continue  # not an answer of the device's
                    if isinstance(reply, dict) and reply.get("transaction") == transaction:
                        print(pretty_json(reply))
                        return 0 if reply.get("status") == "ok" else 1
    except TimeoutError:
        print(
            f"legwave: error: no response from {topics.base} in {args.timeout:g} s", file=sys.stderr
        )
        return 3
    except MqttError as exc:
        print(f"legwave: error: cannot reach the broker at {host}:{port}: {exc}", file=sys.stderr)
        return 3
    return 3  # pragma: no cover - the message stream only ends with the connection


async def _says_offline(client: Client, topics: Topics) -> bool:
    """True when the device's retained availability says `offline` (a broker answers at once)."""
    from bridge.transport import messages

    await client.subscribe(topics.availability, qos=1)
    try:
        async with asyncio.timeout(0.5):
            async for message in messages(client):
                if message.topic == topics.availability:
                    return message.payload == b"offline"
    except TimeoutError:
        pass  # nothing retained: a device never seen, the command may still find it
    finally:
        await client.unsubscribe(topics.availability)
    return False
