"""The agent: the device's control loop on MQTT.

Two independent halves. The control loop (`device.runner.Runner`) ticks at 50 Hz and, after each
tick, puts what changed into the `Outbox` without waiting. The connection loops own the broker
(`bridge.transport.keep_connected`: a fresh client per attempt, a bounded connect, capped
exponential backoff with jitter). The
main connection carries the last will on `…/availability`, and on every connect: subscribe,
discovery, `online`, state. The power line is a second connection that hears only `…/power`, so
that a flood on `…/set` cannot keep the switch, `stop` or `vent` out. Every incoming message is
handled the moment it is read (`bridge.transport.inbox`). A broker outage never touches the control
loop: a running session finishes on its own timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from bridge.codec import (
    MAX_PAYLOAD_BYTES,
    CommandError,
    ParsedCommand,
    Topics,
    parse_command,
    response_topic_problem,
    to_json,
)
from bridge.contract import (
    DiagnosticsMessage,
    EventMessage,
    State,
    StatsMessage,
    Telemetry,
    UpdateMessage,
    response,
)
from bridge.diagnostics import cpu_temperature_c, lateness_summary
from bridge.discovery import DeviceInfo, discovery_messages
from bridge.health import TICK_STALE_S
from bridge.outbox import Message, Outbox
from bridge.ratelimit import LogLimiter, TokenBucket
from bridge.systemd import under_service_manager
from bridge.transport import (
    Client,
    FatalSessionError,
    Incoming,
    Link,
    keep_connected,
    reason_codes,
    send,
)
from bridge.updates import (
    RESTART_EXIT,
    SUMMARY_CHARS,
    Installer,
    Release,
    UpdateInstallError,
    UpdateSourceError,
    fetch_release,
    settle,
)
from device import __version__
from device.control.massager import ACTIVE, Action, Command, CommandRejectedError, Status
from device.stats import therapy_stats
from device.store import Memory, Store

if TYPE_CHECKING:
    from bridge.config import AgentSettings
    from device.runner import Runner

log = logging.getLogger(__name__)

_ANNOUNCE_JITTER_S = (0.5, 5.0)
_SUBSCRIBE_TIMEOUT_S = 10.0
MAX_PACKET_BYTES = 16 * 1024
"""The largest packet the agent accepts (MQTT 5 maximum packet size): the broker drops a larger
one instead of sending it. A command is at most 4 KiB; the margin lets a somewhat larger one still
get its clear `too_large` answer."""


@dataclass(slots=True)
class Stats:
    """Counters for logs, tests and benchmarks."""

    connects: int = 0
    commands: int = 0
    rejected: int = 0
    ignored_retained: int = 0
    announces: int = 0
    wills_contradicted: int = 0
    rate_limited: int = 0
    urgent: int = 0
    unanswered: int = 0
    too_large: int = 0
    bad_response_topics: int = 0
    unsendable: int = 0
    connection_errors: int = 0
    takeovers: int = 0


class DuplicateAgentError(FatalSessionError):
    """Another agent already serves this device id on this broker."""


class Reply(NamedTuple):
    """Where a command's answer goes."""

    topic: str
    correlation: bytes | None
    power_line: bool = False


def may_be_urgent(payload: bytes) -> bool:
    """A cheap first look: could this payload be a `stop` or a `vent` (or power `OFF`)?

    Only payloads that pass are parsed before the rate limit, so a flood costs a substring
    search per message; whatever passes is parsed properly, and decided by what it really is.
    """
    return b"stop" in payload or b"vent" in payload or b"OFF" in payload


COMMANDS_PER_S = 20.0
"""Commands acted on per second, on average (a person or Home Assistant sends a few)."""
COMMAND_BURST = 40.0
"""How many may come at once (a script setting several entities in a row)."""
URGENT = frozenset({Action.STOP, Action.VENT})
"""Always acted on, at once, whatever the flood; only their answers are limited."""
SESSION_TAKEN_OVER = 0x8E
"""MQTT 5 reason code: the broker closed the connection for a newer one with its client id."""
CLOSED_BY_PEER = 0x80
"""What paho reports when the broker just closes the socket (mosquitto does so on a takeover)."""
TAKEOVER_JUDGE_S = 1.0
TAKEOVER_WINDOW_S = 600.0
INSTANCE_BYTES = 8
INSTANCE_PROPERTY = "legwave-instance"
"""MQTT 5 user property on `online`: which running agent said it."""
STARTED_PROPERTY = "legwave-started"
"""MQTT 5 user property on `online`: when that agent started (Unix seconds); the elder stays."""
CONTRADICT_EVERY_S = 1.0
"""At most one `online` a second in answer to `offline` on the availability topic."""
MEMORY_EVERY_S = 30.0
STATS_EVERY_S = 60.0
DIAGNOSTICS_EVERY_S = 60.0
"""How often `…/diagnostics` goes out: the control loop's lateness is judged over this long."""
"""How often the therapy numbers are worked out again (a session's minutes, a new day)."""
"""How often a running session's progress is written (it is written at once on every change)."""


class Agent:
    """Publishes the device, accepts commands, announces to Home Assistant.

    Args:
        settings: agent configuration (broker, topics, discovery, rates).
        runner: the control loop it serves.
        device_id: the resolved device id.
        host: broker host to use (the embedded broker's when `settings.mqtt.host` is unset).
        port: broker port.
        store: where the device's memory is written (none: nothing is remembered).
    """

    def __init__(
        self,
        *,
        settings: AgentSettings,
        runner: Runner,
        device_id: str,
        host: str,
        port: int,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._memory_key: tuple[Any, ...] | None = None
        self._memory_at = -1e9
        self._gate = TokenBucket(rate=COMMANDS_PER_S, burst=COMMAND_BURST)
        # the power line has a budget of its own: a flood on `…/set` cannot keep the switch off
        self._power_gate = TokenBucket(rate=COMMANDS_PER_S, burst=COMMAND_BURST)
        # stop and vent answer from a budget of their own: a flood of them is applied in full
        # but answered like any other, and a flood of anything else never eats their answers
        self._urgent_answers = TokenBucket(rate=COMMANDS_PER_S, burst=COMMAND_BURST)
        self._log = LogLimiter(log)
        # commands people send are worth a line each, a flood of them is not
        self._commands_log = LogLimiter(log, burst=5)
        self._last_limit_reply = -1e9
        self._limited_since_reply = 0
        self._state_wanted = False
        self._online_said_at = -1e9
        self._say_online_at: float | None = None
        self.runner = runner
        self.massager = runner.massager
        self.link = Link(settings.mqtt, host, port)
        base = settings.base_topic or f"legwave/{device_id}"
        ha = settings.homeassistant
        self.info = DeviceInfo(
            device_id=device_id,
            base_topic=base,
            zones=tuple(settings.device.zones),
            version=__version__,
            prefix=ha.prefix,
            name=ha.name,
            suggested_area=ha.suggested_area,
            updates=settings.update.source is not None,
            installs=settings.update.install,
        )
        self.topics = Topics(base)
        self.outbox = Outbox()
        # answers to the power line go out on its own connection: a flood that jams the main
        # connection must not keep `legwave ctl stop` from hearing that the stop was applied
        self.power_outbox = Outbox()
        self.stats = Stats()
        self.connected = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not secrets
        self._started = time.monotonic()
        self._last_key: tuple[Any, ...] | None = None
        self._last_state_at = -1e9
        self._published: tuple[float, State] | None = None  # the state last queued, and when
        self._selftest_key: tuple[object, ...] | None = None
        self._last_telemetry_at = -1e9
        self._stats_at = -1e9
        self._stats_key: tuple[object, ...] | None = None
        self._stats_payload = b""
        self._diagnostics_at = -1e9
        self.latest_release: Release | None = None  # from the release source, once it answered
        self.update_error: str | None = None
        self.update_note: str | None = None  # what became of the last install, or why none ran
        self.update_percentage: int | None = None  # an install runs
        self.exit_code = 0  # RESTART_EXIT once a release is installed: the new one must start
        self._settled = False
        self._install_task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._ticks_seen = 0
        self._announce_task: asyncio.Task[None] | None = None
        self.instance = secrets.token_hex(INSTANCE_BYTES)  # this process, for its peers
        self._token = secrets.token_hex(INSTANCE_BYTES)  # the client id's, renewed on a loss
        self.power_connects = 0
        self.started_at = time.time()
        self.duplicate: str | None = None
        self._stop_now = asyncio.Event()
        self.power_line_connected = asyncio.Event()
        self._takeovers: list[float] = []
        self.ticked_at: float | None = None  # the control loop's last tick (its clock)

    # -- the control-loop side (never waits) ------------------------------------------------
    def after_tick(self, now: float, *, answering: bool = False) -> None:
        """Called by the runner after every tick: queue events, state and telemetry.

        `answering`: called for a command just applied; its new state goes out first.
        """
        self.ticked_at = now
        m = self.massager
        for event in m.drain_events():
            self.outbox.put(Message(self.topics.event, EventMessage.of(event).payload(), qos=1))
        s = m.settings
        key = (m.status, m.phase, s, m.session.id if m.session else None, m.fault)
        interval = self.settings.state_interval_s if m.status in ACTIVE else 3600.0
        if key != self._last_key or now - self._last_state_at >= interval or self._state_wanted:
            self._last_key = key
            self._state_wanted = False
            self.publish_state(now, lead=answering)
        selftest_key = (
            m.selftest_record and m.selftest_record.get("finished_at"),
            m.selftest.step_name if m.selftest is not None and not m.selftest.done else None,
        )
        if selftest_key != self._selftest_key:
            self._selftest_key = selftest_key
            self.publish_selftest()
        if now >= self._diagnostics_at:
            self.publish_diagnostics(now)
        stats_key = (len(m.history), m.session.end_reason if m.session else None, m.status)
        if stats_key != self._stats_key or now >= self._stats_at:
            self._stats_key, self._stats_at = stats_key, now + STATS_EVERY_S
            self.publish_stats()
        if self._say_online_at is not None and now >= self._say_online_at:
            self._say_online(now)
        hz = self.settings.telemetry_hz
        if hz > 0 and m.status in ACTIVE and now - self._last_telemetry_at >= 1.0 / hz:
            self._last_telemetry_at = now
            snap = Telemetry.of(m.snapshot(now)).payload()
            self.outbox.put_latest(Message(self.topics.telemetry, snap, qos=0, coalesce=True))
        if not answering:
            # The next tick hands a command's change to the memory writer: waking that thread now
            # would hand the interpreter back and forth with it while the state goes out (about
            # half of a command's round trip here).
            self.remember(now)

    def health(self) -> dict[str, Any]:
        """What `legwave health` is told: online while connected and the control loop ticks."""
        since = None if self.ticked_at is None else self.runner.clock.now() - self.ticked_at
        reasons = []
        if not self.connected.is_set():
            reasons.append("not connected to the broker")
        if since is None or since > TICK_STALE_S:
            reasons.append("the control loop is not ticking")
        return {
            "status": "offline" if reasons else "online",
            "reason": "; ".join(reasons) or None,
            "device_id": self.info.device_id,
            "device": self.massager.status.value,
            "since_tick_s": None if since is None else round(since, 3),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "connects": self.stats.connects,
        }

    def remember(self, now: float, *, force: bool = False) -> None:
        """Hand the device's memory to the store when it changed (and every 30 s in a session)."""
        if self.store is None:
            return
        m = self.massager
        session = m.session
        active = m.status in ACTIVE
        key = (
            m.settings,
            session.id if session else None,
            session.end_reason if session else None,
            m.sessions_completed,
            len(m.history),
            m.status,
            m.selftest_record and m.selftest_record.get("finished_at"),
        )
        due = active and now - self._memory_at >= MEMORY_EVERY_S
        if force or due or key != self._memory_key:
            self._memory_key = key
            self._memory_at = now
            try:
                memory = Memory.of(m)
            except ValueError as exc:  # never from a sane device; the tick must go on anyway
                self._log.error("memory", now, "the memory cannot be kept: %s", exc)
                return
            self.store.save_soon(memory)

    def close(self) -> None:
        """Hand the memory to the writer one last time and wait until it is on disk."""
        if self.store is not None:
            self.remember(time.monotonic(), force=True)
            self.store.close()

    def state(self, now: float) -> State:
        """The full state: the device's, with the agent's uptime and version."""
        snap = self.massager.snapshot(now)
        return State.of(snap, uptime_s=now - self._started, version=__version__)

    def _state_after(self, now: float) -> State:
        """The state a command's answer carries: the one `after_tick` just queued, if it did."""
        published = self._published
        return published[1] if published is not None and published[0] == now else self.state(now)

    def selftest_report(self) -> dict[str, Any]:
        """What `…/selftest` says: the self-test running now, else the last one's report."""
        m = self.massager
        if m.selftest is not None and not m.selftest.done:
            return m.selftest.report()
        return m.selftest_record or {"result": "never_run"}

    def publish_diagnostics(self, now: float) -> None:
        """Queue the retained diagnostics: the last minute of the control loop, and the host."""
        self._diagnostics_at = now + DIAGNOSTICS_EVERY_S
        runner = self.runner
        p99, worst = lateness_summary(runner.take_recent())
        diagnostics = DiagnosticsMessage(
            started_at=datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            uptime_s=round(time.monotonic() - self._started),
            ticks=runner.ticks - self._ticks_seen,
            lateness_p99_ms=p99,
            lateness_max_ms=worst,
            late_ticks=runner.overruns,
            cpu_temp_c=cpu_temperature_c(),
            connected=True,
            reconnects=max(self.stats.connects - 1, 0),
        )
        self._ticks_seen = runner.ticks
        message = Message(
            self.topics.diagnostics, diagnostics.payload(), retain=True, coalesce=True
        )
        self.outbox.put_latest(message)

    def publish_update(self) -> None:
        """Queue the retained update state: this legwave, and the newest release if known."""
        if self.settings.update.source is None:
            return
        latest = self.latest_release
        notes = (self.update_note, None if latest is None else latest.summary)
        summary = "\n\n".join(note for note in notes if note)  # paragraphs in the entity
        message = UpdateMessage(
            installed_version=__version__,
            latest_version=None if latest is None else latest.version,
            title="legwave",
            release_url=None if latest is None else latest.release_url,
            release_summary=summary[:SUMMARY_CHARS],
            in_progress=self.update_percentage is not None,
            update_percentage=self.update_percentage,
        )
        self.outbox.put_latest(
            Message(self.topics.update, message.payload(), retain=True, coalesce=True)
        )

    async def check_updates_once(self) -> None:
        """Ask the release source for the newest legwave; say what it answered."""
        source = self.settings.update.source
        assert source is not None  # noqa: S101 - only called with a source
        try:
            release = await asyncio.to_thread(fetch_release, source)
        except UpdateSourceError as exc:
            self.update_error = str(exc)
            log.warning("cannot tell whether a newer legwave exists: %s", exc)
            return
        self.update_error = None
        if release != self.latest_release:
            self.latest_release = release
            self.publish_update()

    def install_refusal(self) -> str | None:
        """Why the newest release cannot be installed now, or None."""
        if not self.settings.update.install:
            return "installing is off (update.install)"
        if self.update_percentage is not None:
            return "an install is already running"
        latest = self.latest_release
        if latest is None:
            return "the release source has not answered yet"
        if latest.version == __version__:
            return f"legwave {__version__} is already installed"
        status = self.massager.status
        if status not in (Status.IDLE, Status.FAULT):
            return f"the massager is busy ({status}): stop it, then install"
        if not under_service_manager():
            return "nothing would start legwave again: it does not run under systemd"
        return None

    def _on_install(self, message: Incoming) -> None:
        if message.retain:  # an old request left on the broker is no request
            return
        if message.payload.strip() != b"install":
            self._log.warning(
                "install_payload",
                time.monotonic(),
                "%s: expected `install`, got %r",
                self.topics.update_install,
                message.payload[:40],
            )
            return
        why = self.install_refusal()
        if why is None:
            why = self._installer().refusal()
        if why is not None:
            log.warning("update not installed: %s", why)
            self.update_note = f"Not installed: {why}."
            self.publish_update()
            return
        latest = self.latest_release
        assert latest is not None  # noqa: S101 - install_refusal saw it
        # no session and no self-test starts until the new release runs (or the install failed)
        self.massager.held = f"legwave {latest.version} is being installed"
        self.update_note = None
        self.update_percentage = 0
        self.publish_update()
        self._install_task = asyncio.create_task(self._install(latest.version))

    def _installer(self) -> Installer:
        return Installer(self.settings.state_dir, index_url=self.settings.update.index_url)

    async def _install(self, version: str) -> None:
        loop = asyncio.get_running_loop()

        def progress(percent: int) -> None:
            loop.call_soon_threadsafe(self._progress, percent)

        log.info("installing legwave %s over %s", version, __version__)
        try:
            await asyncio.to_thread(self._installer().install, version, __version__, progress)
        except UpdateInstallError as exc:
            log.error("update not installed: %s", exc)
            self.update_note = f"Not installed: {exc}."
            self.update_percentage = None
            self.massager.held = None
            self.publish_update()
            return
        log.info("legwave %s installed: stopping for the service manager to start it", version)
        self.update_note = f"Installed {version}: restarting."
        self.publish_update()
        self.exit_code = RESTART_EXIT
        if self._stop is not None:
            self._stop.set()

    def _progress(self, percent: int) -> None:
        if self.update_percentage is not None:
            self.update_percentage = percent
            self.publish_update()

    def settle_update(self) -> None:
        """Once online: confirm a release just installed (or say it was rolled back)."""
        if self._settled:
            return
        self._settled = True
        note = settle(self.settings.state_dir, __version__)
        if note is not None:
            log.info("%s", note)
            self.update_note = note

    async def _check_updates(self, stop: asyncio.Event) -> None:
        every_s = 3600.0 * self.settings.update.check_every_h
        while not stop.is_set():
            await self.check_updates_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    def local_now(self) -> datetime:
        """The agent's local time: the days of its therapy numbers are its local days."""
        return datetime.now().astimezone()

    def publish_stats(self) -> None:
        """Queue the retained therapy numbers, when they changed (docs/mqtt.md, `…/stats`)."""
        m = self.massager
        sessions = list(m.history)
        if m.session is not None and m.session.end_reason is None:
            sessions.append(m.session)
        stats = therapy_stats(sessions, self.local_now())
        payload = StatsMessage.model_validate(stats.payload()).payload()
        if payload != self._stats_payload:
            self._stats_payload = payload
            message = Message(self.topics.stats, payload, retain=True, coalesce=True)
            self.outbox.put_latest(message)

    def publish_selftest(self) -> None:
        """Queue the retained self-test report."""
        payload = to_json(self.selftest_report())
        self.outbox.put_latest(Message(self.topics.selftest, payload, retain=True, coalesce=True))

    def publish_state(self, now: float, *, lead: bool = False) -> None:
        """Queue the retained state snapshot (`lead`: ahead of every queued message)."""
        self._last_state_at = now
        state = self.state(now)
        self._published = (now, state)
        payload = state.payload()
        message = Message(self.topics.state, payload, retain=True, coalesce=True)
        self.outbox.put_latest(message, lead=lead)

    # -- what comes in (handled as it is read; never waits, never raises) --------------------
    def receive(self, message: Incoming) -> None:
        """Handle one incoming message the moment it is read from the socket."""
        topics = self.topics
        topic = message.topic
        payload = message.payload
        if topic == topics.set:
            self._on_command(message, payload)
        elif topic == topics.get:
            self._state_wanted = True  # the next tick publishes it: a flood costs one snapshot
        elif topic == self.settings.homeassistant.status_topic:
            if payload.strip() == b"online":
                self._home_assistant_online()
        elif topic == topics.power:
            self._on_power(message, payload)
        elif topic == topics.update_install:
            self._on_install(message)
        elif topic == topics.availability and not message.retain and self.connected.is_set():
            # (the retained value sent on subscribe predates the `online` we announce, and an
            # `offline` after we stopped serving is our own goodbye)
            if payload == b"offline":
                self._contradicted(time.monotonic())
            elif payload == b"online":
                self._online_seen(message)

    def _on_command(self, message: Incoming, payload: bytes) -> None:
        now = time.monotonic()
        if message.retain:
            # A retained command is old by definition: never act on it (it would fire on every
            # reconnect). Home Assistant never retains commands unless told to.
            self.stats.ignored_retained += 1
            self._log.warning(
                "retained",
                now,
                "ignored a retained message on %s (%d bytes)",
                self.topics.set,
                len(payload),
            )
            return
        self.stats.commands += 1
        reply = self._reply_address(message, now)
        parsed: ParsedCommand | CommandError | None = None
        if len(payload) > MAX_PAYLOAD_BYTES:
            # refused unread: never parsed, never urgent
            self.stats.too_large += 1
            parsed = CommandError(
                "too_large", f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
            )
        elif may_be_urgent(payload):
            parsed = parse_command(payload, now=time.time())
            if isinstance(parsed, ParsedCommand) and parsed.command.action in URGENT:
                self._urgent(parsed, now, reply)
                return
        if not self._gate.allow(now):
            self._flooded(payload, parsed, now, reply)
            return
        if parsed is None:
            parsed = parse_command(payload, now=time.time())
        self.handle_command(parsed, now=now, reply=reply)

    def _on_power(self, message: Incoming, payload: bytes) -> None:
        """The power line: `ON` starts; anything else stops the session and vents.

        `ON` (or ``{"power": "ON"}``) goes the way of any command on `…/set`, rate limit
        included. Everything else is a stop (`vent` also vents when idle): there is nothing to
        validate and nothing to hold back, and a flood of it only keeps the device stopped.
        """
        now = time.monotonic()
        if message.retain:
            self.stats.ignored_retained += 1
            self._log.warning(
                "retained_power", now, "ignored a retained message on %s", self.topics.power
            )
            return
        reply = self._reply_address(message, now)
        if reply is not None:
            reply = reply._replace(power_line=True)
        small = len(payload) <= MAX_PAYLOAD_BYTES
        parsed = parse_command(payload, now=time.time()) if small and b"{" in payload else None
        wants_on = payload.strip() == b"ON" or (
            isinstance(parsed, ParsedCommand) and parsed.command.action is Action.START
        )
        if wants_on:
            self.stats.commands += 1
            if not self._power_gate.allow(now):
                self._flooded(payload, parsed, now, reply)
                return
            start = parsed if isinstance(parsed, ParsedCommand) else None
            self.handle_command(
                start or ParsedCommand(Command(action=Action.START)), now=now, reply=reply
            )
            return
        action = Action.VENT if b"vent" in payload[:MAX_PAYLOAD_BYTES] else Action.STOP
        transaction = parsed.transaction if parsed is not None else None
        self._urgent(ParsedCommand(Command(action=action), transaction), now, reply)

    def _online_seen(self, message: Incoming) -> None:
        """A live `online` on our availability topic: ours, or another agent's with our id."""
        props = message.user_properties
        other = props.get(INSTANCE_PROPERTY)
        if other is None or other == self.instance:
            return  # our own (or an MQTT 3.1.1 client's, which cannot tell)
        try:
            their_start = float(props.get(STARTED_PROPERTY, "inf"))
        except ValueError:
            their_start = float("inf")
        if (their_start, other) < (self.started_at, self.instance):
            self.duplicate = (
                f"another legwave agent already serves device {self.info.device_id} on "
                f"{self.link.address} (started {their_start - self.started_at:+.1f} s "
                "before this one): refusing to run twice with one device id"
            )
            log.error("%s", self.duplicate)
            self._stop_now.set()
        else:
            # A newcomer with our id: restate what is true (it overwrote our retained state);
            # it stops itself when it hears this.
            self._log.warning(
                "duplicate",
                time.monotonic(),
                "another legwave agent connected with device id %s; it was told this one is "
                "running",
                self.info.device_id,
            )
            self.announce()

    def _reply_address(self, message: Incoming, now: float) -> Reply | None:
        """Where to answer: the MQTT 5 response topic (if it can take an answer), else ours.

        None: the command asked for an answer where none can go; it is acted on unanswered.
        """
        response_topic = message.response_topic
        correlation = message.correlation
        if response_topic is None:
            return Reply(self.topics.response, correlation)
        own = (self.topics.set, self.topics.power, self.topics.get)
        problem = response_topic_problem(response_topic, own=own)
        if problem is None:
            return Reply(response_topic, correlation)
        self.stats.bad_response_topics += 1
        self._log.warning(
            "response_topic",
            now,
            "a command on %s asked for its answer on %r, where none can go (%s): "
            "acting on it, answering nowhere",
            message.topic,
            response_topic[:80],
            problem,
        )
        return None

    def _answer(self, reply: Reply | None, body: bytes) -> None:
        if reply is not None:
            outbox = self.power_outbox if reply.power_line else self.outbox
            outbox.put(Message(reply.topic, body, qos=1, response_to=reply.correlation))

    def _urgent(self, parsed: ParsedCommand, now: float, reply: Reply | None) -> None:
        """`stop` and `vent`: applied whatever the flood; answered and logged within bounds."""
        self.stats.urgent += 1
        cmd = parsed.command
        try:
            outcome = self.runner.submit(cmd)
        except CommandRejectedError as exc:  # e.g. a stop carrying an invalid setting
            self.stats.rejected += 1
            self._log.warning(f"rejected:{exc.code}", now, "rejected command: %s", exc.message)
            if self._urgent_answers.allow(now):
                self._answer(
                    reply,
                    response(
                        ok=False,
                        transaction=parsed.transaction,
                        code=exc.code,
                        message=exc.message,
                        field=exc.field,
                    ),
                )
            return
        action = cmd.action.value if cmd.action else ""
        self._commands_log.info(f"urgent:{action}", now, "command %s: %s", action, outcome.message)
        self._published = None
        self.after_tick(now, answering=True)  # the state shows it at once, sent first
        if self._urgent_answers.allow(now):
            self._answer(
                reply,
                response(ok=True, transaction=parsed.transaction, state=self._state_after(now)),
            )
        else:
            self.stats.unanswered += 1
            self._log.warning(
                "urgent_flood",
                now,
                "more than %g stop/vent commands a second on %s: all applied, answers held back",
                COMMANDS_PER_S,
                self.topics.set,
            )

    def _flooded(
        self,
        payload: bytes,
        parsed: ParsedCommand | CommandError | None,
        now: float,
        reply: Reply | None,
    ) -> None:
        """A command over the rate limit: act on nothing, answer once a second, log rarely."""
        self.stats.rate_limited += 1
        self._limited_since_reply += 1
        self._log.warning("flood", now, "too many commands on %s: dropping", self.topics.set)
        if now - self._last_limit_reply < 1.0:
            return
        self._last_limit_reply = now
        dropped, self._limited_since_reply = self._limited_since_reply, 0
        if parsed is None and len(payload) <= MAX_PAYLOAD_BYTES:
            parsed = parse_command(payload, now=time.time())  # once a second: for its transaction
        self._answer(
            reply,
            response(
                ok=False,
                transaction=parsed.transaction if parsed is not None else None,
                code="rate_limited",
                message=(
                    f"more than {COMMANDS_PER_S:g} commands a second: {dropped} dropped "
                    "(stop and vent are always accepted)"
                ),
            ),
        )

    def handle_command(
        self, parsed: ParsedCommand | CommandError, *, now: float, reply: Reply | None
    ) -> None:
        """Apply a parsed command (or report why it was refused) and answer it."""
        if isinstance(parsed, CommandError):
            self.stats.rejected += 1
            self._log.warning(
                f"rejected:{parsed.code}",
                now,
                "rejected command: %s: %s",
                parsed.code,
                parsed.message,
            )
            body = response(
                ok=False,
                transaction=parsed.transaction,
                code=parsed.code,
                message=parsed.message,
                field=parsed.field,
            )
        else:
            try:
                outcome = self.runner.submit(parsed.command)
            except CommandRejectedError as exc:
                self.stats.rejected += 1
                self._log.warning(
                    f"rejected:{exc.code}", now, "rejected command: %s: %s", exc.code, exc.message
                )
                body = response(
                    ok=False,
                    transaction=parsed.transaction,
                    code=exc.code,
                    message=exc.message,
                    field=exc.field,
                    state=self.state(now),
                )
            else:
                cmd = parsed.command
                action = cmd.action.value if cmd.action else ""
                given = {k: getattr(v, "value", v) for k, v in cmd.changes.given().items()}
                changes = str(given) if given else ""
                what = " ".join(filter(None, (action, changes)))
                self._commands_log.info(
                    f"command:{action or 'settings'}", now, "command %s: %s", what, outcome.message
                )
                self._published = None
                self.after_tick(now, answering=True)  # the new state at once, sent first
                body = response(
                    ok=True, transaction=parsed.transaction, state=self._state_after(now)
                )
        self._answer(reply, body)

    # -- the network side -------------------------------------------------------------------
    @property
    def client_id(self) -> str:
        """The main connection's MQTT client id: the device id and this process's own token.

        Nobody can guess it, so no other client can take it over and kick the agent off (the
        broker closes the older of two connections with one client id), and two agents
        configured with the same device id no longer take turns kicking each other off.
        """
        return f"legwave-{self.info.device_id}-{self._token}"

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the device on the broker until `stop` is set; then say `offline` and leave.

        Two connections: the main one (state, events, every command) and the power line, which
        hears nothing but `…/power`. A flood on `…/set` fills the broker's queue for the main
        connection, and mosquitto then drops every packet for it, a `stop` among them; the
        power line's queue is its own. Nothing that arrives from the network ends either: a failure
        not foreseen is logged with its traceback and that connection starts again, while the
        control loop goes on.

        Raises:
            DuplicateAgentError: another agent already serves this device on the broker.
        """
        self._stop = stop
        async with asyncio.TaskGroup() as tg:
            checker = (
                tg.create_task(self._check_updates(stop))
                if self.settings.update.source is not None
                else None
            )
            line = tg.create_task(
                keep_connected(
                    self.link,
                    stop,
                    lambda client: self._power_session(client, stop),
                    options=lambda: {
                        "identifier": f"{self.client_id}-power",
                        "on_message": self.receive,
                        "max_packet_bytes": MAX_PACKET_BYTES,
                        "small_receive_buffer": True,
                    },
                    rng=self._rng,
                    label=" (power line)",
                    on_connected=self._power_line_up,
                    on_error=self._failed,
                )
            )
            try:
                await keep_connected(
                    self.link,
                    stop,
                    lambda client: self._session(client, stop),
                    options=lambda: {
                        "identifier": self.client_id,
                        "will": (self.topics.availability, b"offline"),
                        "on_message": self.receive,
                        "max_packet_bytes": MAX_PACKET_BYTES,
                        "small_receive_buffer": True,
                    },
                    rng=self._rng,
                    on_connected=self._main_up,
                    on_lost=self._lost,
                    # The process is going down under us (the control loop failed, say): say
                    # offline, or the broker would keep our retained `online` with nothing running.
                    on_cancelled=self._say_offline,
                    on_closed=self._main_closed,
                    on_error=self._failed,
                )
            finally:
                line.cancel()
                if checker is not None:
                    checker.cancel()

    def _main_up(self) -> None:
        self.stats.connects += 1

    def _power_line_up(self) -> None:
        self.power_connects += 1

    def _failed(self, exc: BaseException) -> None:
        self.stats.connection_errors += 1

    def _main_closed(self) -> None:
        self.connected.clear()
        self.outbox.wake()
        if self._announce_task is not None:
            self._announce_task.cancel()

    def _lost(self, exc: BaseException) -> None:
        """Log a lost connection; for the main one, connect again under a new client id.

        mosquitto closes a connection whose client id another client takes without saying why
        (no DISCONNECT reaches paho). So a loss is judged a second later: if the broker closed
        the main connection while the power line, another connection to the same broker,
        stayed up throughout, the broker was fine and the network too, and the likely cause is
        a client using this agent's id. The new id makes whatever it learned worthless.
        """
        log.warning("lost the broker: %s", str(exc))
        self._token = secrets.token_hex(INSTANCE_BYTES)
        if reason_codes(exc) & {CLOSED_BY_PEER, SESSION_TAKEN_OVER}:
            loop = asyncio.get_running_loop()
            loop.call_later(TAKEOVER_JUDGE_S, self._judge_loss, self.power_connects)

    def _judge_loss(self, power_connects: int) -> None:
        if not self.power_line_connected.is_set() or self.power_connects != power_connects:
            return  # the power line went too: the broker or the network, not a stolen id
        now = time.monotonic()
        self._takeovers = [t for t in self._takeovers if now - t < TAKEOVER_WINDOW_S] + [now]
        self.stats.takeovers += 1
        log.error(
            "the broker closed this agent's connection while its power line stayed connected "
            "(%d times in the last %.0f s): another client is probably using this device's "
            "client id (the broker's log says 'already connected, closing old connection'); "
            "connected again under a new one",
            len(self._takeovers),
            TAKEOVER_WINDOW_S,
        )

    async def _session(self, client: Client, stop: asyncio.Event) -> None:
        topics = self.topics
        async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):
            await client.subscribe(topics.set, qos=1)
            await client.subscribe(topics.get, qos=1)
            await client.subscribe(self.settings.homeassistant.status_topic, qos=1)
            await client.subscribe(topics.availability, qos=1)
            if self.settings.update.install:
                await client.subscribe(topics.update_install, qos=1)
        self.settle_update()
        self.announce()
        self.connected.set()
        try:
            async with asyncio.TaskGroup() as tg:
                receiver = tg.create_task(self._receive(client, self.connected, self.outbox))
                tg.create_task(self._send(client, self.outbox, self.connected))
                await _first_of(stop, self._stop_now)
                # The sender ends by itself once `connected` is clear and it is woken (see
                # bridge.transport: a cancellation alone can be swallowed in Python 3.11).
                self.connected.clear()
                self.outbox.wake()
                receiver.cancel()
        finally:
            self.connected.clear()
            self.outbox.wake()
        if self.duplicate is not None:
            raise DuplicateAgentError(self.duplicate)  # the other agent stays `online`
        # Clean shutdown: say offline ourselves (the broker will not send the will).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                for m in self.outbox.take():
                    await self.link.publish(client, m)
        await self._say_offline(client)

    async def _power_session(self, client: Client, stop: asyncio.Event) -> None:
        async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):
            await client.subscribe(self.topics.power, qos=1)
        self.power_line_connected.set()
        try:
            async with asyncio.TaskGroup() as tg:
                receiver = tg.create_task(
                    self._receive(client, self.power_line_connected, self.power_outbox)
                )
                tg.create_task(self._send(client, self.power_outbox, self.power_line_connected))
                await stop.wait()
                self.power_line_connected.clear()
                self.power_outbox.wake()
                receiver.cancel()
        finally:
            self.power_line_connected.clear()
            self.power_outbox.wake()

    async def _say_offline(self, client: Client) -> None:
        """Publish the retained `offline` before a clean disconnect (no will follows one)."""
        offline = Message(self.topics.availability, b"offline", qos=1, retain=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.link.publish(client, offline)

    def announce(self) -> None:
        """Queue discovery, then `online`, then the state (in that order)."""
        self.stats.announces += 1
        for topic, payload in discovery_messages(self.info, self.settings.homeassistant.discovery):
            self.outbox.put(Message(topic, payload, qos=1, retain=True))
        self._say_online(time.monotonic())
        self.publish_state(time.monotonic())
        self.publish_selftest()
        self._stats_payload = b""  # the broker may have lost it: say it again
        self.publish_stats()
        self.publish_diagnostics(self.runner.clock.now())
        self.publish_update()

    def _say_online(self, now: float) -> None:
        self._online_said_at = now
        self._say_online_at = None
        self.outbox.put_latest(
            Message(
                self.topics.availability,
                b"online",
                qos=1,
                retain=True,
                coalesce=True,
                user_properties=(
                    (INSTANCE_PROPERTY, self.instance),
                    (STARTED_PROPERTY, repr(self.started_at)),
                ),
            ),
            first=True,
        )

    async def _announce_later(self) -> None:
        await asyncio.sleep(self._rng.uniform(*_ANNOUNCE_JITTER_S))
        self.announce()

    async def _receive(self, client: Client, connected: asyncio.Event, outbox: Outbox) -> None:
        """Wait for the connection to end (the inbox handles every message as it comes)."""
        try:
            async for _ in client.messages:
                pass  # nothing is ever queued
        finally:
            connected.clear()  # a lost connection also ends the sender
            outbox.wake()

    def _contradicted(self, now: float) -> None:
        """`offline` arrived while we are connected: say `online` again, once a second at most.

        The broker sent the last will of an earlier connection of ours, one it had not yet
        given up on when we reconnected (after it was frozen, say). Left alone, Home Assistant
        would show the device as unavailable until the next reconnect. A flood of `offline`
        (someone publishing it on purpose) gets one `online` a second, and the last word.
        """
        self.stats.wills_contradicted += 1
        self._log.info(
            "contradicted",
            now,
            "%s said offline while we are connected: saying online again",
            self.topics.availability,
        )
        if now - self._online_said_at >= CONTRADICT_EVERY_S:
            self._say_online(now)
        elif self._say_online_at is None:
            self._say_online_at = self._online_said_at + CONTRADICT_EVERY_S

    def _home_assistant_online(self) -> None:
        """Home Assistant (re)started: announce again after a random delay.

        Its docs ask for the delay, so a house full of devices does not answer in one instant.
        """
        if self._announce_task is None or self._announce_task.done():
            self._announce_task = asyncio.create_task(self._announce_later())

    async def _send(self, client: Client, outbox: Outbox, connected: asyncio.Event) -> None:
        await send(self.link, client, outbox, connected, on_unsendable=self._unsendable)

    def _unsendable(self, m: Message, exc: Exception) -> None:
        """A message the client refuses outright is dropped with a log line."""
        self.stats.unsendable += 1
        self._log.warning(
            "unsendable", time.monotonic(), "dropped a message to %r: %s", m.topic[:80], exc
        )


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until one of `events` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def remove_retained(settings: AgentSettings, info: DeviceInfo, host: str, port: int) -> int:
    """Clear every retained message the device owns; returns how many topics were cleared."""
    from bridge.discovery import owned_retained_topics

    topics = owned_retained_topics(info)
    link = Link(settings.mqtt, host, port)
    async with link.session(identifier=f"legwave-remove-{info.device_id}") as client:
        for topic in topics:
            await link.publish(client, Message(topic, b"", qos=1, retain=True))
    return len(topics)
