"""`legwave watch`: a live view of the running device."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from bridge.cli.options import broker_address, device_info, seconds

if TYPE_CHECKING:
    import argparse

    from bridge.config import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `watch` to the command line."""
    parser = sub.add_parser("watch", help="live view of the running device (Ctrl-C to leave)")
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument("--timeout", type=seconds, default=10.0, help="with --once: give up after")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: AgentSettings) -> int:
    """Draw until Ctrl-C (or one frame); 3 when the broker or the state cannot be had."""
    from bridge.transport import MqttError
    from bridge.watch import watch

    host, port = broker_address(settings)
    base = device_info(settings).base_topic

    async def follow() -> int:
        if not args.once:
            return await watch(settings.mqtt, host, port, base, once=False)
        async with asyncio.timeout(args.timeout):
            return await watch(settings.mqtt, host, port, base, once=True)

    try:
        return asyncio.run(follow())
    except KeyboardInterrupt:
        return 0
    except TimeoutError:
        print(f"legwave: error: no state from {base} in {args.timeout:g} s", file=sys.stderr)
        return 3
    except MqttError as exc:
        print(f"legwave: error: cannot reach the broker at {host}:{port}: {exc}", file=sys.stderr)
        return 3
