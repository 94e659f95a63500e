"""What the subcommands share: options defined once, and the helpers they all use."""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
from typing import TYPE_CHECKING, Any

from device.backends import BACKENDS
from device.settings import PRESETS, Heat, Mode, Posture, Vibration

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bridge.config import AgentSettings
    from bridge.discovery import DeviceInfo

SETTINGS = ("mode", "intensity", "heat", "vibration", "duration_min", "posture", "zone_boost")


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above zero (not ``nan``, not ``inf``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0 or value > 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0 and 3600")
    return value


def add_setting_options(parser: argparse.ArgumentParser) -> None:
    """--preset and one option per session setting."""
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a preset")
    parser.add_argument("--mode", choices=[m.value for m in Mode])
    parser.add_argument("--intensity", type=int, metavar="1-7")
    parser.add_argument("--heat", choices=[h.value for h in Heat])
    parser.add_argument("--vibration", choices=[v.value for v in Vibration])
    parser.add_argument("--duration-min", type=int, metavar="5-60")
    parser.add_argument("--posture", choices=[p.value for p in Posture])
    parser.add_argument("--zone-boost", metavar="ZONE")


def setting_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The session-setting options given on the command line."""
    return {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}


def add_fault_option(parser: argparse.ArgumentParser, *, when: str) -> None:
    """--fault NAME[:ZONE][@SECONDS], repeatable; `when` says when it strikes without @."""
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[:ZONE][@SECONDS]",
        help=f"inject a simulated hardware or wiring fault (repeatable); without @: {when}",
    )


def add_seed_option(parser: argparse.ArgumentParser) -> None:
    """--seed for the simulator's noise."""
    parser.add_argument("--seed", type=int, default=0, help="simulator noise seed (default 0)")


def add_backend_option(
    parser: argparse.ArgumentParser,
    *,
    choices: tuple[str, ...] = BACKENDS,
    what: str = "default: the configured one",
) -> None:
    """--backend, overriding the configuration's; `what` is its help."""
    parser.add_argument("--backend", choices=choices, help=what)


def fail(message: str) -> int:
    """Say what went wrong on stderr, the way every subcommand does; exit status 2."""
    print(f"legwave: error: {message}", file=sys.stderr)
    return 2


def device_info(settings: AgentSettings) -> DeviceInfo:
    """The device's identity as the agent announces it (never a new one)."""
    from bridge.config import resolve_device_id
    from bridge.discovery import DeviceInfo
    from device import __version__

    device_id = resolve_device_id(settings, create=False)
    return DeviceInfo(
        device_id=device_id,
        base_topic=settings.base_topic or f"legwave/{device_id}",
        zones=tuple(settings.device.zones),
        version=__version__,
        prefix=settings.homeassistant.prefix,
        name=settings.homeassistant.name,
        suggested_area=settings.homeassistant.suggested_area,
        updates=settings.update.source is not None,
    )


def broker_address(settings: AgentSettings) -> tuple[str, int]:
    """Where the agent's broker is (the embedded one listens on 127.0.0.1)."""
    return settings.mqtt.host or "127.0.0.1", settings.mqtt.port


def describe_broker(host: str | None, port: int) -> str:
    """Which broker `legwave run` will use, as it will decide it."""
    if host:
        return f"broker {host}:{port}"
    from bridge.broker import port_open

    if port_open(port):
        return f"broker 127.0.0.1:{port} (none configured: the one already listening there)"
    return f"broker 127.0.0.1:{port} (none configured: legwave run starts its own mosquitto)"


async def until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(stop)` until SIGINT or SIGTERM sets `stop`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(stop)
