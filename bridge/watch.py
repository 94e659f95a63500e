"""`legwave watch`: a live terminal view of a running device (plain ANSI, no dependency)."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from bridge.codec import Topics
from bridge.transport import Link, messages

if TYPE_CHECKING:
    from bridge.config import MqttSettings

BAR = 30
_CLEAR = "\x1b[H\x1b[2J"
_REDRAW_S = 0.2
"""At most five frames a second."""


def _bar(fraction: float, width: int = BAR) -> str:
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return "█" * filled + "·" * (width - filled)


def _clock(seconds: float) -> str:
    s = max(int(seconds), 0)
    return f"{s // 60:d}:{s % 60:02d}"


def _number(value: object, default: float = 0.0) -> float:
    """A finite number out of a foreign payload's field, else `default`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


def _mapping(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def render(
    state: dict[str, Any] | None,
    telemetry: dict[str, Any] | None,
    events: list[str],
    *,
    online: bool | None,
) -> str:
    """One screen of the live view; any field may be missing or of the wrong kind."""
    if state is None:
        return "waiting for the device's state…"
    lines = []
    where = {True: "online", False: "OFFLINE", None: "?"}[online]
    phase = f" · {state['phase']}" if state.get("phase") else ""
    lines.append(f"legwave · {state.get('status', '?')}{phase} · {where}")
    preset = state.get("preset") or "-"
    lines.append(
        f"preset {preset} · {state.get('mode', '?')} · level {state.get('intensity', '?')}"
        f" · heat {state.get('heat', '?')} · vibration {state.get('vibration', '?')}"
        f" · {state.get('duration_min', '?')} min"
    )
    total = _number(state.get("duration_min")) * 60
    progress = _number(state.get("progress")) / 100
    remaining = _number(state.get("remaining_s"))
    lines.append(f"[{_bar(progress)}] {progress:4.0%}  {_clock(remaining)} left of {_clock(total)}")
    lines.append("")
    source = telemetry or state
    pressures = _mapping(source.get("pressure_mmhg"))
    targets = _mapping(source.get("target_mmhg"))
    for zone, value in pressures.items():
        p = _number(value)
        target = targets.get(zone)
        mark = f"→ {_number(target):5.1f}" if target is not None else "  vent "
        lines.append(f"{zone:<12} [{_bar(p / 100.0)}] {p:5.1f} mmHg {mark}")
    heater = source.get("heater_c")
    if heater is not None:
        c = _number(heater)
        lines.append(f"{'heater':<12} [{_bar((c - 25.0) / 20.0)}] {c:5.1f} °C")
    if state.get("fault"):
        lines.append("")
        lines.append(f"FAULT {state['fault']}: {state.get('fault_message') or ''}")
    if events:
        lines.append("")
        lines.extend(events[-5:])
    return "\n".join(lines)


async def watch(mq: MqttSettings, host: str, port: int, base: str, *, once: bool) -> int:
    """Follow the device on `base` until Ctrl-C (or one frame with `once`).

    Args:
        mq: the broker settings (credentials, TLS, protocol).
        host: broker host.
        port: broker port.
        base: the device's base topic.
        once: print one frame, then return.
    """
    topics = Topics(base)
    state: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    online: bool | None = None
    events: deque[str] = deque(maxlen=5)
    last_draw = 0.0
    async with Link(mq, host, port).session() as client:
        # availability first: its retained message then arrives before the state's
        for topic in (topics.availability, topics.state, topics.telemetry, topics.event):
            await client.subscribe(topic, qos=1)
        incoming = aiter(messages(client))
        pending = False  # a frame held back by the redraw limit
        while True:
            try:
                # a frame held back is drawn once the limit allows, message or not: the last
                # state (a stop) must show even when nothing follows it
                async with asyncio.timeout(_REDRAW_S if pending else None):
                    message = await anext(incoming)
            except TimeoutError:
                sys.stdout.write(_CLEAR + render(state, telemetry, list(events), online=online))
                sys.stdout.write("\n")
                sys.stdout.flush()
                last_draw, pending = time.monotonic(), False
                continue
            raw = message.payload
            topic = message.topic
            try:
                data = json.loads(raw) if topic != topics.availability else None
            except ValueError:
                continue  # a foreign or broken payload: keep showing the last good one
            if topic == topics.availability:
                online = raw == b"online"
            elif not isinstance(data, dict):
                continue  # JSON, but not an object: not the device's
            elif topic == topics.state:
                state = data
                telemetry = None  # older than this state; it comes again while a session runs
            elif topic == topics.telemetry:
                telemetry = data
            elif topic == topics.event:
                events.append(
                    f"{time.strftime('%H:%M:%S')} {data.get('event_type')} {data.get('code', '')}"
                )
            if once:
                if state is not None:
                    print(render(state, telemetry, list(events), online=online))
                    return 0
                continue  # one frame, once there is a state to draw
            now = time.monotonic()
            if now - last_draw >= _REDRAW_S:
                last_draw, pending = now, False
                screen = render(state, telemetry, list(events), online=online)
                sys.stdout.write(_CLEAR + screen + "\n")
                sys.stdout.flush()
            else:
                pending = True
    return 0
