"""The commands of the CLI that reach a broker or hardware.

run, plant, doctor, selftest, calibrate, discovery, remove, ctl, watch, health and registrar
(simulate and config check need neither: `bridge.cli`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import TYPE_CHECKING

from bridge.agent import remove_retained
from bridge.broker import BrokerUnavailableError
from bridge.codec import STALE_AFTER_S, Topics, pretty_json
from bridge.config import resolve_device_id
from bridge.discovery import DeviceInfo, component_payloads, device_payload
from bridge.outbox import Message
from bridge.transport import Client, Link, MqttError, messages
from device import __version__
from device.backends.pi.board import HardwareUnavailableError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from bridge.config import AgentSettings


def dispatch(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Run the network command named in `args`."""
    match args.command:
        case "run":
            from bridge.service import DuplicateAgentError, StateDirectoryInUseError, serve

            try:
                asyncio.run(serve(settings))
            except (
                BrokerUnavailableError,
                HardwareUnavailableError,
                StateDirectoryInUseError,
                DuplicateAgentError,
            ) as exc:
                print(f"legwave: error: {exc}", file=sys.stderr)
                return 2
            return 0
        case "plant":
            return _plant(args, settings)
        case "calibrate":
            from bridge.calibrate import calibrate_command

            return calibrate_command(
                settings,
                zones=args.zone,
                reference=args.reference,
                raw=args.raw,
                once=args.once,
                fault_specs=args.fault,
                seed=args.seed,
            )
        case "selftest":
            from bridge.selftest import selftest_command

            return selftest_command(
                settings, fault_specs=args.fault, seed=args.seed, as_json=args.json
            )
        case "doctor":
            from bridge.doctor import run_checks

            return run_checks(settings, backend=args.backend)
        case "discovery":
            info = device_info(settings)
            style = args.style or settings.homeassistant.discovery
            body = component_payloads(info) if style == "per_component" else device_payload(info)
            print(pretty_json(body))
            return 0
        case "remove":
            info = device_info(settings)
            host, port = broker_address(settings)
            try:
                count = asyncio.run(remove_retained(settings, info, host, port))
            except MqttError as exc:
                print(
                    f"legwave: error: cannot reach the broker at {host}:{port}: {exc}",
                    file=sys.stderr,
                )
                return 3
            print(f"cleared {count} retained topics of {info.device_id}")
            return 0
        case "ctl":
            return asyncio.run(_ctl(args, settings))
        case "watch":
            return _watch(args, settings)
        case "health":
            return asyncio.run(_health(args, settings))
        case "registrar":
            return _registrar(settings)
    return 2  # pragma: no cover


def device_info(settings: AgentSettings) -> DeviceInfo:
    """The device's identity as the agent announces it (never a new one)."""
    device_id = resolve_device_id(settings, create=False)
    return DeviceInfo(
        device_id=device_id,
        base_topic=settings.base_topic or f"legwave/{device_id}",
        zones=tuple(settings.device.zones),
        version=__version__,
        prefix=settings.homeassistant.prefix,
        suggested_area=settings.homeassistant.suggested_area,
    )


def broker_address(settings: AgentSettings) -> tuple[str, int]:
    """Where the agent's broker is (the embedded one listens on 127.0.0.1)."""
    return settings.mqtt.host or "127.0.0.1", settings.mqtt.port


def _watch(args: argparse.Namespace, settings: AgentSettings) -> int:
    from bridge.watch import watch

    host, port = broker_address(settings)
    base = device_info(settings).base_topic

    async def run() -> int:
        if not args.once:
            return await watch(settings.mqtt, host, port, base, once=False)
        async with asyncio.timeout(args.timeout):
            return await watch(settings.mqtt, host, port, base, once=True)

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    except TimeoutError:
        print(f"legwave: error: no state from {base} in {args.timeout:g} s", file=sys.stderr)
        return 3
    except MqttError as exc:
        print(f"legwave: error: cannot reach the broker at {host}:{port}: {exc}", file=sys.stderr)
        return 3


async def _health(args: argparse.Namespace, settings: AgentSettings) -> int:
    """0 when the retained availability is `online`, 1 when not, 3 when the broker is away."""
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


async def _ctl(args: argparse.Namespace, settings: AgentSettings) -> int:
    from bridge.cli import setting_changes

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


def _registrar(settings: AgentSettings) -> int:
    """`legwave registrar`: serve until SIGINT/SIGTERM."""
    from bridge.registrar import Registrar

    host, port = broker_address(settings)
    registrar = Registrar(settings=settings, host=host, port=port)
    asyncio.run(_until_signalled(registrar.run))
    return 0


async def _until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(stop)` until SIGINT or SIGTERM sets `stop`."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(stop)


def _plant(args: argparse.Namespace, settings: AgentSettings) -> int:
    """`legwave plant`: serve the simulated board until SIGINT/SIGTERM."""
    from device.backends.plant.server import PlantServer
    from device.backends.sim import FaultInjection, FaultSpecError

    try:
        faults = [
            FaultInjection.parse(spec, zones=settings.device.zones, default_at_s=0.0)
            for spec in args.fault
        ]
    except FaultSpecError as exc:
        print(f"legwave: error: {exc}", file=sys.stderr)
        return 2
    path = args.socket or settings.plant_path
    path.parent.mkdir(parents=True, exist_ok=True)
    server = PlantServer(
        socket_path=path, device=settings.device, config=settings.pi, faults=faults, seed=args.seed
    )

    print(f"simulated board on {path}", file=sys.stderr, flush=True)
    asyncio.run(_until_signalled(server.run))
    return 0
