"""`docs/mqtt.md`, generated from the contract: every topic, command field, state and event field.

`scripts/docs` writes it; a test fails when the file is not what this module renders.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Le
from pydantic import BaseModel

from bridge.codec import (
    AHEAD_LIMIT_S,
    MAX_PAYLOAD_BYTES,
    STALE_AFTER_S,
    CommandBody,
    Topics,
)
from bridge.contract import (
    EVENT_FIELDS,
    DiagnosticsMessage,
    EventMessage,
    LastSession,
    Response,
    ResponseError,
    SelftestReport,
    State,
    StatsMessage,
    Telemetry,
    UpdateMessage,
    response,
)
from device.control.massager import EventType, Snapshot, Status
from device.control.patterns import Phase
from device.settings import PRESETS, Mode

TOPICS: tuple[tuple[str, str, str], ...] = (
    # (Topics property, direction, retained)
    ("availability", "out", "retained"),
    ("state", "out", "retained"),
    ("telemetry", "out", ""),
    ("event", "out", ""),
    ("selftest", "out", "retained"),
    ("stats", "out", "retained"),
    ("diagnostics", "out", "retained"),
    ("update", "out", "retained"),
    ("response", "out", ""),
    ("set", "in", "retained ignored"),
    ("power", "in", "retained ignored"),
    ("get", "in", ""),
    ("update_install", "in", "retained ignored"),
)


def _type(annotation: Any) -> str:
    """A field's type as a reader of JSON sees it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        return _type(base) + _bounds([m for info in meta for m in getattr(info, "metadata", [])])
    if origin in (Union, types.UnionType):
        parts = [_type(a) for a in get_args(annotation) if a is not type(None)]
        text = " or ".join(dict.fromkeys(parts))
        return f"{text} or null" if type(None) in get_args(annotation) else text
    if origin is Literal:
        return " / ".join(f"`{v}`" for v in get_args(annotation))
    if origin is dict:
        return f"object: zone → {_type(get_args(annotation)[1])}"
    if origin is list:
        return f"list of {_type(get_args(annotation)[0])}"
    if inspect.isclass(annotation) and issubclass(annotation, Enum):
        return " / ".join(f"`{m.value}`" for m in annotation)
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "object (below)"
    return {
        int: "integer",
        float: "number",
        str: "string",
        bool: "boolean",
        datetime: "ISO 8601 string",
    }.get(annotation, str(annotation))


def _bounds(metadata: list[Any]) -> str:
    low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, Le)), None)
    return f", {low} to {high}" if low is not None and high is not None else ""


def _fields(model: type[BaseModel], *, names: tuple[str, ...] | None = None) -> list[str]:
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        if names is not None and name not in names:
            continue
        kind = _type(info.annotation) + _bounds(info.metadata)
        rows.append(f"| `{name}` | {kind} | {info.description or ''} |")
    return rows


def _default(setting: str) -> str:
    from bridge.config import AgentSettings

    return f"{AgentSettings.model_fields[setting].default:g}"


def _sample(payload: bytes) -> list[str]:
    return ["```json", json.dumps(json.loads(payload), indent=2, ensure_ascii=False), "```"]


def sample_snapshot() -> Snapshot:
    """A recovery session five minutes in, on a four-zone device (for the samples)."""
    settings = PRESETS["recovery"]
    started = datetime(2026, 6, 1, 19, 30, tzinfo=UTC)
    elapsed = 300.0
    remaining = settings.duration_min * 60.0 - elapsed
    return Snapshot(
        status=Status.RUNNING,
        phase=Phase.HOLDING,
        settings=settings,
        remaining_s=remaining,
        elapsed_s=elapsed,
        progress=elapsed / (settings.duration_min * 60.0),
        ends_at=started + timedelta(seconds=elapsed + remaining),
        session_id="3f9c2a7e51d04b8e",
        pressures={"foot": 52.04, "ankle": 47.96, "calf": 8.3, "upper_calf": 0.02},
        targets={"foot": 52.0, "ankle": 48.0, "calf": None, "upper_calf": None},
        heater_c=38.73,
        fault=None,
        fault_message=None,
        sessions_completed=11,
        therapy_s_total=11 * 1200.0 + elapsed,
    )


def sample_stats() -> StatsMessage:
    """A week of evening sessions, as `…/stats` says it."""
    return StatsMessage(
        day="2026-12-02",
        minutes_today=20.0,
        minutes_7d=95.0,
        sessions_week=3,
        streak_days=4,
        adherence_pct=63,
        last_session=LastSession(
            end_reason="completed",
            preset="bedtime",
            minutes=20.0,
            planned_minutes=20,
            peak_mmhg=44.6,
            started_at="2026-12-02T20:40:03+00:00",
            ended_at="2026-12-02T21:00:41+00:00",
        ),
    )


def render() -> str:
    """The whole reference, as Markdown."""
    t = Topics("legwave/<device_id>")
    snap = sample_snapshot()
    state = State.of(snap, uptime_s=86_400, version="0.1.0")
    out = [
        "# MQTT API reference",
        "",
        "Generated from the code (`bridge/contract.py`, `bridge/codec.py`) by `scripts/docs`;",
        "a test fails when it is out of date. Every payload is strict JSON (RFC 8259): a value",
        "the device does not have yet is `null`, never `NaN`.",
        "",
        "## Topics",
        "",
        "| topic | direction | retained | what |",
        "|---|---|---|---|",
    ]
    for name, direction, retained in TOPICS:
        topic = getattr(t, name)
        doc = inspect.getdoc(getattr(Topics, name)) or ""
        out.append(f"| `{topic}` | {direction} | {retained} | {doc} |")
    out += [
        "",
        "Also heard: Home Assistant's birth message (`homeassistant/status` = `online`, the",
        "prefix configurable) makes the agent announce itself again after 0.5–5 s.",
        "",
        "## Commands on `…/set`",
        "",
        "One JSON object, at most",
        f"{MAX_PAYLOAD_BYTES} bytes; every field optional, no other field allowed. Settings and an",
        "action in one command are applied together or not at all. A refusal names the field.",
        "",
        *_fields(CommandBody),
        "",
        f"Presets: {', '.join(f'`{p}`' for p in PRESETS)}. A command whose `ts` is more than",
        f"{STALE_AFTER_S:g} s old or {AHEAD_LIMIT_S:g} s ahead is refused as `stale`.",
        "",
        "Start a bedtime session of 30 minutes:",
        "",
        *_sample(b'{"action": "start", "preset": "bedtime", "duration_min": 30, "transaction": 7}'),
        "",
        "## The power line, `…/power`",
        "",
        "`ON` (or a JSON command whose action is `start`) starts a session, through the same",
        "checks as `…/set`. Anything else stops the session and vents; a payload containing",
        "`vent` also vents when idle. The agent hears it on a connection of its own, so a flood",
        "on `…/set` cannot hold a stop up.",
        "",
        "## State, `…/state`",
        "",
        "Retained; published on every change, and every",
        f"{_default('state_interval_s')} s while a session runs (`state_interval_s`).",
        "",
        *_fields(State),
        "",
        *_sample(state.payload()),
        "",
        "## Telemetry, `…/telemetry`",
        "",
        f"While a session is active, at `telemetry_hz` (default {_default('telemetry_hz')} Hz);",
        "not retained.",
        "",
        *_fields(Telemetry),
        "",
        *_sample(Telemetry.of(snap).payload()),
        "",
        "## Events, `…/event`",
        "",
        "Never retained. Each carries `event_type` and `session_id`, and the fields its type",
        "lists:",
        "",
        "| event_type | fields |",
        "|---|---|",
    ]
    for kind, names in EVENT_FIELDS.items():
        fields = ", ".join(f"`{n}`" for n in names) or "—"
        out.append(f"| `{kind.value}` | {fields} |")
    event_fields = tuple(n for names in EVENT_FIELDS.values() for n in names)
    sample_event = EventMessage.model_validate(
        {
            "event_type": EventType.SESSION_STARTED,
            "session_id": snap.session_id,
            "preset": "recovery",
            "mode": Mode.WAVE,
            "intensity": 5,
            "duration_min": 20,
        }
    )
    out += [
        "",
        *_fields(EventMessage, names=event_fields),
        "",
        *_sample(sample_event.payload()),
        "",
        "## Responses, `…/response`",
        "",
        "One per command, on the MQTT 5 response topic when the command named one (with its",
        "correlation data), else here.",
        "",
        *_fields(Response),
        "",
        "`error`:",
        "",
        *_fields(ResponseError),
        "",
        *_sample(
            response(
                ok=False,
                transaction=7,
                code="invalid",
                message="intensity: Input should be less than or equal to 7",
                field="intensity",
            )
        ),
        "",
        "## Self-test, `…/selftest`",
        "",
        *_fields(SelftestReport),
        "",
        "## Therapy numbers, `…/stats`",
        "",
        "Retained; published when a session ends, at start-up, and when a minute's work changes",
        "them (a session's minutes, a new day). A session counts on the agent's local day it",
        "started; a *completed* session ran its whole planned length.",
        "",
        *_fields(StatsMessage),
        "",
        "`last_session`:",
        "",
        *_fields(LastSession),
        "",
        *_sample(sample_stats().payload()),
        "",
        "## Diagnostics, `…/diagnostics`",
        "",
        "Retained; every minute and whenever the agent connects.",
        "",
        *_fields(DiagnosticsMessage),
        "",
        "## Update, `…/update`",
        "",
        "Retained, with a release source configured (`update.source`): at every connection and",
        "whenever the source names another release. Home Assistant's update entity reads it as",
        "it is.",
        "",
        *_fields(UpdateMessage),
        "",
        "With `update.install` on, `install` on `…/update/install` (the entity's Install button)",
        "installs the newest release when the massager is idle, then restarts the agent through",
        "systemd; a refusal or a failure is said in `release_summary` (`Not installed: …`), and",
        "so is the outcome after the restart (`Updated from …`, or `… was rolled back: …`).",
        "docs/hardware.md, Updates, tells the whole sequence.",
        "",
        "## Availability, `…/availability`",
        "",
        "`online` / `offline`, retained; `offline` is the last will and is also said on a clean",
        "stop.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write the reference to the path given (default: print it)."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
