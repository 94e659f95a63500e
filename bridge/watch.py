"""`legwave watch`: a live terminal view of a running device (plain ANSI, no dependency)."""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from bridge.agent import short_client
from bridge.codec import Topics

if TYPE_CHECKING:
    from bridge.config import MqttSettings

BAR = 30
_CLEAR = "\x1b[H\x1b[2J"


def _bar(fraction: float, width: int = BAR) -> str:
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return "█" * filled + "·" * (width - filled)


def _clock(seconds: float) -> str:
    s = max(int(seconds), 0)
    return f"{s // 60:d}:{s % 60:02d}"


def render(
    state: dict[str, Any] | None,
    telemetry: dict[str, Any] | None,
    events: list[str],
    *,
    online: bool | None,
) -> str:
    """One screen of the live view."""
    if state is None:
        return "waiting for the device's state…"
    lines = []
    where = {True: "online", False: "OFFLINE", None: "?"}[online]
    phase = f" · {state['phase']}" if state.get("phase") else ""
    lines.append(f"legwave · {state['status']}{phase} · {where}")
    preset = state.get("preset") or "-"
    lines.append(
        f"preset {preset} · {state['mode']} · level {state['intensity']} · heat {state['heat']}"
        f" · vibration {state['vibration']} · {state['duration_min']} min"
    )
    total = state["duration_min"] * 60
    progress = state.get("progress", 0) / 100
    remaining = state.get("remaining_s", 0)
    lines.append(f"[{_bar(progress)}] {progress:4.0%}  {_clock(remaining)} left of {_clock(total)}")
    lines.append("")
    source = telemetry or state
    pressures: dict[str, float] = source.get("pressure_mmhg") or {}
    targets: dict[str, float | None] = source.get("target_mmhg") or {}
    for zone, p in pressures.items():
        target = targets.get(zone)
        mark = f"→ {target:5.1f}" if target is not None else "  vent "
        lines.append(f"{zone:<12} [{_bar(p / 100.0)}] {p:5.1f} mmHg {mark}")
    heater = source.get("heater_c")
    if heater is not None:
        lines.append(f"{'heater':<12} [{_bar((heater - 25.0) / 20.0)}] {heater:5.1f} °C")
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
    async with short_client(mq, host, port) as client:
        for topic in (topics.state, topics.telemetry, topics.event, topics.availability):
            await client.subscribe(topic, qos=1)
        async for message in client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else b""
            topic = message.topic.value
            try:
                if topic == topics.state:
                    state = json.loads(raw)
                elif topic == topics.telemetry:
                    telemetry = json.loads(raw)
                elif topic == topics.event:
                    ev = json.loads(raw)
                    events.append(
                        f"{time.strftime('%H:%M:%S')} {ev.get('event_type')} {ev.get('code', '')}"
                    )
                elif topic == topics.availability:
                    online = raw == b"online"
            except (ValueError, TypeError):
                continue  # a foreign or broken payload: keep showing the last good one
            if once and state is not None:
                print(render(state, telemetry, list(events), online=online))
                return 0
            now = time.monotonic()
            if now - last_draw >= 0.2:
                last_draw = now
                screen = render(state, telemetry, list(events), online=online)
                sys.stdout.write(_CLEAR + screen + "\n")
                sys.stdout.flush()
    return 0
