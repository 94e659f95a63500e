"""`legwave health`: exit 0 while the device says `online` on the broker (a healthcheck)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bridge.cli.options import broker_address, device_info, seconds

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `health` to the command line."""
    parser = sub.add_parser("health", help="exit 0 while the device says online on the broker")
    parser.add_argument("--timeout", type=seconds, default=5.0)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """0 when the retained availability is `online`, 1 when not, 3 when the broker is away."""
    return asyncio.run(_health(args, settings))


async def _health(args: argparse.Namespace, settings: AgentSettings) -> int:
    from bridge.codec import Topics
    from bridge.transport import Link, MqttError, messages

    host, port = broker_address(settings)
    topic = Topics(device_info(settings).base_topic).availability
    try:
        async with Link(settings.mqtt, host, port).session() as client:
            await client.subscribe(topic, qos=1)
            async with asyncio.timeout(args.timeout):
                async for message in messages(client):
                    online = message.payload == b"online"
                    print("online" if online else "offline")
                    return 0 if online else 1
    except TimeoutError:
        print("unknown: nothing retained on " + topic)
        return 1
    except MqttError as exc:
        print(f"broker unreachable at {host}:{port}: {exc}")
        return 3
    return 1  # pragma: no cover
