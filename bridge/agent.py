"""The agent: the device's control loop on MQTT (SPEC §3–§5).

Two independent halves. The control loop (`device.runner.Runner`) ticks at 50 Hz and, after each
tick, puts what changed into the `Outbox` without waiting. The connection loop owns the broker: a
fresh aiomqtt client per attempt, a bounded connect, capped exponential backoff with jitter, the
last will on `…/availability`, and on every connect: subscribe, discovery, `online`, state.
A broker outage never touches the control loop: a running session finishes on its own timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.codec import (
    CommandError,
    ParsedCommand,
    Topics,
    parse_command,
    response_payload,
    to_json,
)
from bridge.discovery import DeviceInfo, discovery_messages
from bridge.outbox import Message, Outbox
from bridge.ratelimit import LogLimiter, TokenBucket
from bridge.store import Memory, Store
from device import __version__
from device.control.massager import ACTIVE, Action, CommandRejectedError

if TYPE_CHECKING:
    from bridge.config import AgentSettings, MqttSettings
    from device.runner import Runner

log = logging.getLogger(__name__)

_ANNOUNCE_JITTER_S = (0.5, 5.0)
# paho leaves Nagle's algorithm on: a small publish then waits for the peer's delayed ACK, ~40 ms
# per hop on loopback. Every client of ours turns it off (brokers need `set_tcp_nodelay true`).
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
_SUBSCRIBE_TIMEOUT_S = 10.0
_DISCONNECT_TIMEOUT_S = 3.0
_SENDER_POLL_S = 1.0


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


def backoff_delay(attempt: int, *, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, 0.5·2^attempt)], at least 0.1 s."""
    return max(0.1, rng.uniform(0.0, min(cap, 0.5 * 2.0**attempt)))


def tls_parameters(mq: MqttSettings) -> aiomqtt.TLSParameters | None:
    """The client's TLS settings, None without TLS; the server certificate is always checked."""
    if mq.tls is None:
        return None
    return aiomqtt.TLSParameters(
        ca_certs=str(mq.tls.ca_file) if mq.tls.ca_file else None,
        certfile=str(mq.tls.cert_file) if mq.tls.cert_file else None,
        keyfile=str(mq.tls.key_file) if mq.tls.key_file else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )


def short_client(
    mq: MqttSettings, host: str, port: int, *, identifier: str | None = None
) -> aiomqtt.Client:
    """A client for the command line's short jobs (ctl, watch, health, remove, doctor).

    It connects as the agent does, with the configured protocol, credentials and TLS, and
    without Nagle's delay; it leaves no will and keeps no session.
    """
    username, password = mq.credentials()
    v5 = mq.protocol == "5"
    return aiomqtt.Client(
        hostname=host,
        port=port,
        identifier=identifier,
        username=username,
        password=password,
        tls_params=tls_parameters(mq),
        tls_insecure=mq.tls.insecure if mq.tls else None,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        socket_options=NO_DELAY,
    )


COMMANDS_PER_S = 20.0
"""Commands acted on per second, on average (a person or Home Assistant sends a few)."""
COMMAND_BURST = 40.0
"""How many may come at once (a script setting several entities in a row)."""
URGENT = frozenset({Action.STOP, Action.VENT})
MEMORY_EVERY_S = 30.0
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
        self._log = LogLimiter(log)
        self._last_limit_reply = -1e9
        self._limited_since_reply = 0
        self.runner = runner
        self.massager = runner.massager
        self.host = host
        self.port = port
        base = settings.base_topic or f"legwave/{device_id}"
        ha = settings.homeassistant
        self.info = DeviceInfo(
            device_id=device_id,
            base_topic=base,
            zones=tuple(settings.device.zones),
            version=__version__,
            prefix=ha.prefix,
            suggested_area=ha.suggested_area,
        )
        self.topics = Topics(base)
        self.outbox = Outbox()
        self.stats = Stats()
        self.connected = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not secrets
        self._started = time.monotonic()
        self._last_key: tuple[Any, ...] | None = None
        self._last_state_at = -1e9
        self._last_telemetry_at = -1e9
        self._announce_task: asyncio.Task[None] | None = None

    # -- the control-loop side (never waits) ------------------------------------------------
    def after_tick(self, now: float) -> None:
        """Called by the runner after every tick: queue events, state and telemetry."""
        m = self.massager
        for event in m.drain_events():
            body = {"event_type": event.event_type, "session_id": event.session_id, **event.data}
            self.outbox.put(Message(self.topics.event, to_json(body), qos=1))
        s = m.settings
        key = (m.status, m.phase, s, m.session.id if m.session else None, m.fault)
        interval = self.settings.state_interval_s if m.status in ACTIVE else 3600.0
        if key != self._last_key or now - self._last_state_at >= interval:
            self._last_key = key
            self.publish_state(now)
        hz = self.settings.telemetry_hz
        if hz > 0 and m.status in ACTIVE and now - self._last_telemetry_at >= 1.0 / hz:
            self._last_telemetry_at = now
            snap = {
                "pressure_mmhg": dict(
                    zip(self.info.zones, (round(p, 1) for p in m.pressures), strict=True)
                ),
                "target_mmhg": dict(
                    zip(
                        self.info.zones,
                        (None if t is None else round(t, 1) for t in m.targets),
                        strict=True,
                    )
                ),
                "heater_c": max(m.temperatures, default=None),
            }
            self.outbox.put_latest(
                Message(self.topics.telemetry, to_json(snap), qos=0, coalesce=True)
            )
        self.remember(now)

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
        )
        due = active and now - self._memory_at >= MEMORY_EVERY_S
        if force or due or key != self._memory_key:
            self._memory_key = key
            self._memory_at = now
            self.store.save_soon(Memory.of(m))

    def close(self) -> None:
        """Hand the memory to the writer one last time and wait until it is on disk."""
        if self.store is not None:
            self.remember(time.monotonic(), force=True)
            self.store.close()

    def state(self, now: float) -> dict[str, Any]:
        """The full state snapshot (SPEC §3.2)."""
        snap = self.massager.snapshot(now)
        snap["uptime_s"] = round(now - self._started)
        snap["version"] = __version__
        return snap

    def publish_state(self, now: float) -> None:
        """Queue the retained state snapshot."""
        self._last_state_at = now
        payload = to_json(self.state(now))
        self.outbox.put_latest(Message(self.topics.state, payload, retain=True, coalesce=True))

    # -- commands ---------------------------------------------------------------------------
    def handle_command(
        self,
        payload: bytes,
        *,
        retained: bool,
        response_to: bytes | None = None,
        response_topic: str | None = None,
    ) -> None:
        """Parse, apply and answer one `…/set` message."""
        if retained:
            # A retained command is old by definition: never act on it (it would fire on every
            # reconnect). Home Assistant never retains commands unless told to.
            self.stats.ignored_retained += 1
            log.warning(
                "ignored a retained message on %s (%d bytes)", self.topics.set, len(payload)
            )
            return
        self.stats.commands += 1
        now = time.monotonic()
        parsed = parse_command(payload, now=time.time())
        topic = response_topic or self.topics.response
        urgent = isinstance(parsed, ParsedCommand) and parsed.command.action in URGENT
        if not urgent and not self._gate.allow(now):
            # A flood: act on nothing more, answer once a second, log once in a while.
            # `stop` and `vent` are never held back (SPEC §2.6: they always win).
            self.stats.rate_limited += 1
            self._limited_since_reply += 1
            self._log.warning("flood", now, "too many commands on %s: dropping", self.topics.set)
            if now - self._last_limit_reply >= 1.0:
                self._last_limit_reply = now
                dropped, self._limited_since_reply = self._limited_since_reply, 0
                body = response_payload(
                    ok=False,
                    transaction=parsed.transaction,
                    code="rate_limited",
                    message=(
                        f"more than {COMMANDS_PER_S:g} commands a second: {dropped} dropped "
                        "(stop and vent are always accepted)"
                    ),
                )
                self.outbox.put(Message(topic, body, qos=1, response_to=response_to))
            return
        if isinstance(parsed, CommandError):
            self.stats.rejected += 1
            self._log.warning(
                f"rejected:{parsed.code}",
                now,
                "rejected command: %s: %s",
                parsed.code,
                parsed.message,
            )
            body = response_payload(
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
                body = response_payload(
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
                changes = str(dict(cmd.changes)) if cmd.changes else ""
                log.info(
                    "command %s: %s", " ".join(filter(None, (action, changes))), outcome.message
                )
                self.after_tick(now)  # publish the change without waiting for the next tick
                body = response_payload(
                    ok=True, transaction=parsed.transaction, state=self.state(now)
                )
        self.outbox.put(Message(topic, body, qos=1, response_to=response_to))

    # -- the network side -------------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        mq: MqttSettings = self.settings.mqtt
        tls = tls_parameters(mq)
        v5 = mq.protocol == "5"
        username, password = mq.credentials()
        return aiomqtt.Client(
            hostname=self.host,
            port=self.port,
            identifier=f"legwave-{self.info.device_id}",
            username=username,
            password=password,
            tls_params=tls,
            tls_insecure=mq.tls.insecure if mq.tls else None,
            keepalive=mq.keepalive_s,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(self.topics.availability, b"offline", qos=1, retain=True),
            # A fresh session: commands queued while we were away are not replayed late.
            clean_session=None if v5 else True,
            clean_start=True if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            max_queued_incoming_messages=1000,
            socket_options=NO_DELAY,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a connection until `stop` is set; then say `offline` and disconnect cleanly."""
        attempt = 0
        mq = self.settings.mqtt
        cap = mq.reconnect_max_s
        # paho gives up on a CONNACK after one keepalive and closes the socket, but aiomqtt's
        # connect then waits on: a broker that was frozen (SIGSTOP, a stalled VM) would cost a
        # whole connect timeout before the next attempt. Wait no longer than paho does.
        connect_timeout = min(mq.connect_timeout_s, mq.keepalive_s + 1.0)
        while not stop.is_set():
            client = self._client()
            try:
                async with asyncio.timeout(connect_timeout):
                    await client.__aenter__()
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                delay = backoff_delay(attempt, cap=cap, rng=self._rng)
                attempt += 1
                log.warning(
                    "cannot reach the broker at %s:%d (%s); retrying in %.1f s",
                    self.host,
                    self.port,
                    str(exc) or type(exc).__name__,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            attempt = 0
            self.stats.connects += 1
            log.info("connected to the broker at %s:%d", self.host, self.port)
            try:
                await self._session(client, stop)
            except* (aiomqtt.MqttError, TimeoutError) as group:
                # The session's task group wraps the disconnect; either way: reconnect.
                log.warning("lost the broker: %s", str(group.exceptions[0]))
            finally:
                self.connected.clear()
                if self._announce_task is not None:
                    self._announce_task.cancel()
                # aiomqtt waits for the disconnect callback without a timeout; a publish
                # cancelled in flight can leave it waiting for ever.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_DISCONNECT_TIMEOUT_S):
                        await client.__aexit__(None, None, None)
            if not stop.is_set():
                delay = backoff_delay(0, cap=cap, rng=self._rng)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        topics = self.topics
        async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):
            await client.subscribe(topics.set, qos=1)
            await client.subscribe(topics.get, qos=1)
            await client.subscribe(self.settings.homeassistant.status_topic, qos=1)
            await client.subscribe(topics.availability, qos=1)
        self.announce()
        self.connected.set()
        try:
            async with asyncio.TaskGroup() as tg:
                receiver = tg.create_task(self._receive(client))
                tg.create_task(self._send(client))
                await stop.wait()
                # The sender ends by itself once `connected` is clear: a cancellation can be
                # swallowed by asyncio.wait_for in Python 3.11 (inside aiomqtt's publish).
                self.connected.clear()
                receiver.cancel()
        finally:
            self.connected.clear()
        # Clean shutdown: say offline ourselves (the broker will not send the will).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                for m in self.outbox.take():
                    await self._publish(client, m)
                await client.publish(topics.availability, b"offline", qos=1, retain=True)

    def announce(self) -> None:
        """Queue discovery, then `online`, then the state (in that order)."""
        self.stats.announces += 1
        for topic, payload in discovery_messages(self.info, self.settings.homeassistant.discovery):
            self.outbox.put(Message(topic, payload, qos=1, retain=True))
        self.outbox.put(Message(self.topics.availability, b"online", qos=1, retain=True))
        self.publish_state(time.monotonic())

    async def _announce_later(self) -> None:
        await asyncio.sleep(self._rng.uniform(*_ANNOUNCE_JITTER_S))
        self.announce()

    async def _receive(self, client: aiomqtt.Client) -> None:
        topics = self.topics
        status_topic = self.settings.homeassistant.status_topic
        try:
            await self._dispatch(client, topics, status_topic)
        finally:
            self.connected.clear()  # a lost connection also ends the sender

    async def _dispatch(self, client: aiomqtt.Client, topics: Topics, status_topic: str) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = (
                message.payload
                if isinstance(message.payload, bytes)
                else str(message.payload).encode()
            )
            if topic == topics.set:
                props = message.properties
                response_topic = getattr(props, "ResponseTopic", None) if props else None
                correlation = getattr(props, "CorrelationData", None) if props else None
                self.handle_command(
                    payload,
                    retained=message.retain,
                    response_to=correlation,
                    response_topic=response_topic,
                )
            elif topic == topics.get:
                self.publish_state(time.monotonic())
            elif topic == status_topic and payload.strip() == b"online":
                self._home_assistant_online()
            elif topic == topics.availability and payload == b"offline" and not message.retain:
                # (the retained value sent on subscribe predates the `online` we announce)
                self._contradicted()
            # Let the control loop run between two messages: a backlog of a thousand would
            # otherwise be handled in one go and hold a tick back.
            await asyncio.sleep(0)

    def _contradicted(self) -> None:
        """`offline` arrived while we are connected: say `online` again.

        The broker sent the last will of an earlier connection of ours, one it had not yet
        given up on when we reconnected (after it was frozen, say). Left alone, Home Assistant
        would show the device as unavailable until the next reconnect.
        """
        self.stats.wills_contradicted += 1
        log.info("the broker published an old last will (offline): saying online again")
        self.outbox.put(Message(self.topics.availability, b"online", qos=1, retain=True))

    def _home_assistant_online(self) -> None:
        """Home Assistant (re)started: announce again after a random delay.

        Its docs ask for the delay, so a house full of devices does not answer in one instant.
        """
        if self._announce_task is None or self._announce_task.done():
            self._announce_task = asyncio.create_task(self._announce_later())

    async def _send(self, client: aiomqtt.Client) -> None:
        while self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SENDER_POLL_S):
                    await self.outbox.wait()
            if not self.connected.is_set() or not len(self.outbox):
                continue
            batch = self.outbox.take()
            for i, m in enumerate(batch):
                try:
                    await self._publish(client, m)
                except aiomqtt.MqttError:
                    self.outbox.give_back(batch[i:])
                    raise

    async def _publish(self, client: aiomqtt.Client, m: Message) -> None:
        props = None
        if m.response_to is not None and self.settings.mqtt.protocol == "5":
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = m.response_to
        await client.publish(
            m.topic, m.payload, qos=m.qos, retain=m.retain, properties=props, timeout=10
        )


async def remove_retained(settings: AgentSettings, info: DeviceInfo, host: str, port: int) -> int:
    """Clear every retained message the device owns; returns how many topics were cleared."""
    from bridge.discovery import owned_retained_topics

    topics = owned_retained_topics(info)
    identifier = f"legwave-remove-{info.device_id}"
    async with short_client(settings.mqtt, host, port, identifier=identifier) as client:
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)
    return len(topics)
