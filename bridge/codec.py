"""The MQTT contract (SPEC §3): topics, the command parser, and the response/event payloads.

`parse_command` is total: any bytes give a `ParsedCommand` or a `CommandError` naming the field
and the reason. It never raises, and it checks everything before anything is applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from device.control.massager import Action, Command
from device.settings import DurationMin, Heat, Intensity, Mode, Posture, Vibration

MAX_PAYLOAD_BYTES = 4096
STALE_AFTER_S = 30.0
DEVICE_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
Transaction = str | int | float


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one device under its base topic."""

    base: str

    @property
    def availability(self) -> str:
        """Retained `online`/`offline`; the last will."""
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        """Retained full JSON snapshot."""
        return f"{self.base}/state"

    @property
    def telemetry(self) -> str:
        """Fast per-zone data, not retained."""
        return f"{self.base}/telemetry"

    @property
    def event(self) -> str:
        """Session and fault events, never retained."""
        return f"{self.base}/event"

    @property
    def set(self) -> str:
        """Commands in."""
        return f"{self.base}/set"

    @property
    def get(self) -> str:
        """Anything here re-publishes the state."""
        return f"{self.base}/get"

    @property
    def response(self) -> str:
        """One reply per command."""
        return f"{self.base}/response"


class CommandBody(BaseModel):
    """The JSON object on `…/set` (SPEC §3.1); every field optional, nothing else allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action | None = None
    power: Literal["ON", "OFF"] | None = None
    intensity: Intensity | None = None
    mode: Mode | None = None
    heat: Heat | None = None
    vibration: Vibration | None = None
    duration_min: DurationMin | None = None
    zone_boost: str | None = None
    posture: Posture | None = None
    preset: str | None = None
    transaction: Transaction | None = None
    ts: float | datetime | None = None


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A command that passed every check, and the transaction to echo."""

    command: Command
    transaction: Transaction | None = None


@dataclass(frozen=True, slots=True)
class CommandError:
    """Why a payload was refused.

    Args:
        code: ``too_large``, ``malformed``, ``invalid`` or ``stale``.
        message: names the field and the reason.
        field: the offending field, when one is at fault.
        transaction: echoed when it could be read.
    """

    code: str
    message: str
    field: str | None = None
    transaction: Transaction | None = None


def parse_command(payload: bytes, *, now: float) -> ParsedCommand | CommandError:
    """Parse a `…/set` payload received at `now` (Unix seconds). Never raises."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return CommandError(
            "too_large", f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return CommandError("malformed", f"payload is not valid JSON: {_short(exc)}")
    if not isinstance(data, dict):
        return CommandError("invalid", "payload must be a JSON object")
    raw_tx = data.get("transaction")
    transaction = (
        raw_tx if isinstance(raw_tx, str | int | float) and not isinstance(raw_tx, bool) else None
    )
    try:
        body = CommandBody.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        # The body is flat: the first location is the field (the rest names a union member).
        field = str(err["loc"][0]) if err["loc"] else None
        where = f"{field}: " if field else ""
        return CommandError("invalid", f"{where}{err['msg']}", field, transaction)
    except (ValueError, RecursionError) as exc:  # pragma: no cover - json.loads accepted it
        return CommandError("malformed", f"payload is not valid JSON: {_short(exc)}")
    if body.ts is not None:
        sent = body.ts.timestamp() if isinstance(body.ts, datetime) else body.ts
        if isinstance(body.ts, datetime) and body.ts.tzinfo is None:
            return CommandError("invalid", "ts: needs a time zone", "ts", transaction)
        age = now - sent
        if age > STALE_AFTER_S:
            return CommandError(
                "stale",
                f"ts: command is {age:.0f} s old (limit {STALE_AFTER_S:.0f} s)",
                "ts",
                transaction,
            )
        if age < -STALE_AFTER_S:
            return CommandError("stale", f"ts: {-age:.0f} s in the future", "ts", transaction)
    action = body.action
    if body.power is not None:
        wanted = Action.START if body.power == "ON" else Action.STOP
        if action is not None and action is not wanted:
            return CommandError(
                "invalid", f"power: {body.power} contradicts action {action}", "power", transaction
            )
        action = wanted
    changes = {
        name: value.value if hasattr(value, "value") else value
        for name, value in body.model_dump(
            exclude_none=True, exclude={"action", "power", "transaction", "ts"}
        ).items()
    }
    return ParsedCommand(Command(action=action, changes=changes), transaction)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def response_payload(
    *,
    ok: bool,
    transaction: Transaction | None,
    code: str | None = None,
    message: str | None = None,
    field: str | None = None,
    state: dict[str, Any] | None = None,
) -> bytes:
    """The JSON reply on `…/response`."""
    body: dict[str, Any] = {"status": "ok" if ok else "error", "transaction": transaction}
    if not ok:
        body["error"] = {"code": code, "message": message, "field": field}
    if state is not None:
        body["state"] = state
    return json.dumps(body, separators=(",", ":")).encode()


def to_json(data: dict[str, Any]) -> bytes:
    """Compact JSON for a state, telemetry or event payload."""
    return json.dumps(data, separators=(",", ":")).encode()
