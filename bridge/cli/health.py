"""`legwave health`: exit 0 while the agent is online (a container's healthcheck).

It asks the agent that runs with this configuration's state directory, over a Unix socket there
(`bridge.health`): online while it is connected to the broker and its control loop ticks.
`--broker` asks the broker instead, for the device's retained availability: from another machine,
or to see what Home Assistant sees.

The healthcheck runs every 30 s for as long as the device lives, so `quick` answers it before the
rest of the command line loads: no settings models, no MQTT client.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bridge.health import HealthConfigError, ask, state_dir_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bridge.config import AgentSettings

DEFAULT_TIMEOUT_S = 5.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `health` to the command line."""
    from bridge.cli.options import seconds

    parser = sub.add_parser("health", help="exit 0 while the agent says it is online")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT_S)
    parser.add_argument(
        "--broker",
        action="store_true",
        help="ask the broker for the device's retained availability, not the local agent",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """0 when online, 1 when not; with --broker, 3 when the broker is away."""
    if args.broker:
        import asyncio

        return asyncio.run(_broker(args, settings))
    return _local(settings.state_dir, args.timeout)


class _NotQuick(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotQuick(message)


def quick(argv: Sequence[str]) -> int | None:
    """Answer ``legwave [--config F] [-v] health [--timeout S]`` on its own; None for the rest.

    Anything else (other options, bad values, `--help`) goes to the whole command line, which
    says what is wrong the way every subcommand does.
    """
    parser = _Parser(add_help=False)
    parser.add_argument("--config", type=Path, default=os.environ.get("LEGWAVE_CONFIG"))
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("command", choices=["health"])
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    try:
        args, rest = parser.parse_known_args(argv)
    except _NotQuick:
        return None
    if rest or not 0 < args.timeout <= 3600:
        return None
    try:
        state_dir = state_dir_of(args.config, os.environ)
    except HealthConfigError:
        return None  # the whole command line reports what is wrong with the file
    return _local(state_dir, args.timeout)


def _local(state_dir: Path, timeout: float) -> int:
    try:
        answer = ask(state_dir, timeout)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        print(f"offline: no agent answers in {state_dir} ({reason})")
        return 1
    online = answer.get("status") == "online"
    print("online" if online else f"offline: {answer.get('reason')}")
    return 0 if online else 1


async def _broker(args: argparse.Namespace, settings: AgentSettings) -> int:
    import asyncio

    from bridge.cli.options import broker_address, device_info
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
