"""The only place that speaks MQTT: every aiomqtt and paho call of legwave goes through here.

One client builder (`Link.client`) for the agent, the registrar and every short job of the
command line (ctl, watch, health, remove, doctor), so all connect the same way: the configured
protocol, credentials and TLS, Nagle's delay off, MQTT 5 properties where the protocol has them.
`keep_connected` is the one connect-with-backoff loop. `Incoming` is what a handler sees of a
message: plain values, no library types.

A broker that refuses MQTT 5 (amqtt 0.12 answers "unsupported protocol version") is tried again
with MQTT 3.1.1, once, with a log line that says what to configure to skip the attempt.

Library workarounds, each where it is needed:
- aiomqtt has no reconnection of its own (empicano/aiomqtt#287, open): a new client per attempt.
- aiomqtt 2.5 waits for paho's disconnect callback without a timeout: every disconnect here is
  bounded by `DISCONNECT_TIMEOUT_S`.
- Python 3.11's `asyncio.wait_for` can swallow a cancellation (python/cpython#86296, fixed in
  3.12), and aiomqtt's publish uses it: a sender is ended by clearing its `connected` event and
  waking its outbox, not by cancelling it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.transport.inbox import inbox_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from bridge.config import MqttSettings
    from bridge.outbox import Message, Outbox

log = logging.getLogger(__name__)

MqttError = aiomqtt.MqttError
"""Anything that ends or refuses a connection."""
Client = aiomqtt.Client
CONNECT_ERRORS: tuple[type[BaseException], ...] = (aiomqtt.MqttError, TimeoutError, OSError)
"""What a failed connect raises: the broker refused, did not answer, or could not be reached."""

# paho leaves Nagle's algorithm on: a small publish then waits for the peer's delayed ACK, ~40 ms
# per hop on loopback. Every client of ours turns it off (brokers need `set_tcp_nodelay true`).
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
# A flood waits in the kernel's buffers in front of a `stop`: a small receive buffer keeps that
# backlog short (the broker drops what does not fit, rather than the agent reading it late).
RECEIVE_BUFFER_BYTES = 32 * 1024
SMALL_RECEIVE_BUFFER = (socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
SHORT_JOB_MAX_PACKET_BYTES = 256 * 1024
"""The largest packet a command-line client accepts: it reads state and discovery (≈ 10 KiB)."""
DISCONNECT_TIMEOUT_S = 3.0
PROBE_311_S = 2.0
"""How long an MQTT 3.1.1 attempt after an unanswered MQTT 5 one may take."""
UNSUPPORTED_PROTOCOL = frozenset({1, 0x84})
"""CONNACK codes for "not this protocol version": MQTT 3.1.1's 1, MQTT 5's 0x84."""


class FatalSessionError(Exception):
    """Raised by a session to end `keep_connected` for good (no reconnect)."""


class Incoming:
    """One received message, as plain values (the MQTT 5 properties read only when asked for)."""

    __slots__ = ("_raw", "payload", "retain", "topic")

    def __init__(self, raw: aiomqtt.Message) -> None:
        self._raw = raw
        self.topic: str = raw.topic.value
        self.payload: bytes = raw.payload if isinstance(raw.payload, bytes) else b""
        self.retain: bool = raw.retain

    @property
    def response_topic(self) -> str | None:
        """The MQTT 5 response topic, if the sender named one."""
        value = getattr(self._raw.properties, "ResponseTopic", None)
        return None if value is None else str(value)

    @property
    def correlation(self) -> bytes | None:
        """The MQTT 5 correlation data, to be echoed on the answer."""
        value = getattr(self._raw.properties, "CorrelationData", None)
        return value if isinstance(value, bytes) else None

    @property
    def user_properties(self) -> dict[str, str]:
        """The MQTT 5 user properties (none on MQTT 3.1.1)."""
        return dict(getattr(self._raw.properties, "UserProperty", None) or ())


def backoff_delay(attempt: int, *, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, 0.5·2^attempt)], at least 0.1 s."""
    return max(0.1, rng.uniform(0.0, min(cap, 0.5 * 2.0**attempt)))


def reason_codes(exc: BaseException) -> set[int]:
    """Every MQTT reason code along `exc`'s chain of causes."""
    codes: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None:
        rc = getattr(cause, "rc", None)
        value = getattr(rc, "value", rc)
        if isinstance(value, int):
            codes.add(value)
        cause = cause.__cause__
    return codes


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


def _connect_properties(max_packet_bytes: int) -> Properties:
    """MQTT 5 CONNECT properties: the broker must not send a packet larger than this.

    A broker without its own limit would otherwise forward a 100 MB publish, which paho reads
    whole into memory before anyone can look at its size.
    """
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.MaximumPacketSize = max_packet_bytes
    return props


class Link:
    """How to reach one broker: its address and the configured connection settings.

    Args:
        mq: protocol, credentials, TLS, keepalive and timeouts.
        host: the broker's host.
        port: the broker's port.
    """

    def __init__(self, mq: MqttSettings, host: str, port: int) -> None:
        self.mq = mq
        self.host = host
        self.port = port
        self.v5 = mq.protocol == "5"

    @property
    def address(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"

    def client(
        self,
        *,
        identifier: str | None = None,
        will: tuple[str, bytes] | None = None,
        on_message: Callable[[Incoming], None] | None = None,
        max_packet_bytes: int = SHORT_JOB_MAX_PACKET_BYTES,
        small_receive_buffer: bool = False,
        v5: bool | None = None,
    ) -> aiomqtt.Client:
        """A new, unconnected client.

        Args:
            identifier: the MQTT client id (None: the library picks one).
            will: (topic, payload) of a retained QoS 1 last will.
            on_message: handle each message as paho reads it (nothing queues); without it,
                messages queue for `client.messages`.
            max_packet_bytes: the largest packet the broker may send (MQTT 5).
            small_receive_buffer: keep the kernel's receive buffer small (see above).
            v5: the protocol (None: MQTT 5 unless configured or found otherwise).
        """
        mq = self.mq
        username, password = mq.credentials()
        v5 = self.v5 if v5 is None else v5
        options: dict[str, Any] = {}
        if on_message is not None:
            options["queue_type"] = inbox_for(on_message, Incoming)
        client = aiomqtt.Client(
            hostname=self.host,
            port=self.port,
            identifier=identifier,
            username=username,
            password=password,
            tls_params=tls_parameters(mq),
            tls_insecure=mq.tls.insecure if mq.tls else None,
            keepalive=mq.keepalive_s,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(will[0], will[1], qos=1, retain=True) if will else None,
            # A fresh session: commands queued while we were away are not replayed late.
            clean_session=None if v5 else True,
            clean_start=True if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=_connect_properties(max_packet_bytes) if v5 else None,
            socket_options=(*NO_DELAY, SMALL_RECEIVE_BUFFER) if small_receive_buffer else NO_DELAY,
            **options,
        )
        # aiomqtt warns past 10 calls awaiting an answer; the pipelined sender keeps up to
        # MAX_IN_FLIGHT publishes waiting, and a subscribe or two may wait beside them.
        client.pending_calls_threshold = 2 * MAX_IN_FLIGHT
        return client

    async def connect(self, within_s: float, **options: Any) -> aiomqtt.Client:
        """Build a client with `options` (see `client`) and connect it within `within_s` seconds.

        A broker that refuses MQTT 5 gets MQTT 3.1.1 from then on, on this link. Some refuse
        with a CONNACK that says so; others (amqtt 0.12, given a will) close the connection
        without a CONNACK, so after an MQTT 5 attempt that timed out, one MQTT 3.1.1 attempt
        follows at once, with a short timeout of its own.

        Raises:
            One of CONNECT_ERRORS.
        """
        try:
            return await self._enter(self.client(**options), within_s)
        except aiomqtt.MqttError as exc:
            if not (self.v5 and reason_codes(exc) & UNSUPPORTED_PROTOCOL):
                raise
            self._fall_back("refuses MQTT 5")
            return await self._enter(self.client(**options), within_s)
        except TimeoutError:
            if not self.v5:
                raise
            try:
                client = await self._enter(
                    self.client(**options, v5=False), min(within_s, PROBE_311_S)
                )
            except CONNECT_ERRORS:  # down, or frozen: not a question of protocol
                raise TimeoutError(f"no answer to an MQTT 5 connect in {within_s:g} s") from None
            self._fall_back("never answers an MQTT 5 connect, but answers MQTT 3.1.1")
            return client

    def _fall_back(self, why: str) -> None:
        if not self.v5:
            return  # the other connection found it first
        self.v5 = False
        log.warning(
            "the broker at %s %s; using MQTT 3.1.1 (set mqtt.protocol: '3.1.1' to say so and "
            "skip the first attempt)",
            self.address,
            why,
        )

    @staticmethod
    async def _enter(client: aiomqtt.Client, within_s: float) -> aiomqtt.Client:
        async with asyncio.timeout(within_s):
            await client.__aenter__()
        return client

    @asynccontextmanager
    async def session(self, *, identifier: str | None = None) -> AsyncIterator[aiomqtt.Client]:
        """A connected client for a short job; no will, no session kept, always disconnected."""
        client = await self.connect(self.mq.connect_timeout_s, identifier=identifier)
        try:
            yield client
        finally:
            await disconnect(client)

    async def publish(
        self, client: aiomqtt.Client, m: Message, *, ack_within_s: float = 10
    ) -> None:
        """Publish `m` (its MQTT 5 properties only where the protocol has them).

        Raises:
            ValueError, TypeError: paho refuses the topic or the payload.
            MqttError: the connection failed.
        """
        props = None
        if self.v5 and (
            m.response_to is not None
            or m.user_properties
            or m.response_topic is not None
            or m.expiry_s is not None
        ):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if m.response_to is not None:
                props.CorrelationData = m.response_to
            if m.response_topic is not None:
                props.ResponseTopic = m.response_topic
            if m.user_properties:
                props.UserProperty = list(m.user_properties)
            if m.expiry_s is not None:
                props.MessageExpiryInterval = m.expiry_s
        await client.publish(
            m.topic, m.payload, qos=m.qos, retain=m.retain, properties=props, timeout=ack_within_s
        )


async def disconnect(client: aiomqtt.Client) -> None:
    """Disconnect, bounded in time and quietly: the connection may already be gone."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
            await client.__aexit__(None, None, None)


class messages:  # lower case: used like a function, `async for m in messages(client)`
    """The messages queued for a client built without `on_message`, as `Incoming`.

    An iterator, not a generator: a wait for the next message may be cancelled (a timeout) and
    the iteration goes on afterwards.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self._raw = aiter(client.messages)

    def __aiter__(self) -> messages:
        return self

    async def __anext__(self) -> Incoming:
        return Incoming(await anext(self._raw))


MAX_IN_FLIGHT = 20
"""Messages awaiting their acknowledgement at once, paho's own window: past it the sender lets
the outbox coalesce (the newest state replaces an older one) instead of queueing in paho."""


async def send(
    link: Link,
    client: aiomqtt.Client,
    outbox: Outbox,
    connected: asyncio.Event,
    *,
    on_unsendable: Callable[[Message, Exception], None],
) -> None:
    """Publish what the outbox holds while `connected` is set, in order, at least once.

    Pipelined: each message is handed to the client as soon as it is queued, without waiting for
    the acknowledgement of the one before (the broker still gets them in order), up to
    `MAX_IN_FLIGHT` unacknowledged. On any exit (an error, a cancellation, `connected` cleared)
    every message not acknowledged goes back to the outbox and out on the next connection; the
    sender does not wait for acknowledgements to leave. Clear `connected` and call
    `outbox.wake()` to end it.

    Raises:
        MqttError: a publish failed (the connection is going).
    """
    in_flight: dict[asyncio.Future[None], Message] = {}  # in the order they were sent
    failed: list[BaseException] = []

    def settled(task: asyncio.Future[None]) -> None:
        if task.cancelled():
            return  # the sender is leaving: it gives the message back
        exc = task.exception()
        if exc is None:
            in_flight.pop(task, None)
        else:
            failed.append(exc)
            outbox.wake()
        if len(in_flight) == MAX_IN_FLIGHT - 1:
            outbox.wake()  # room again

    try:
        while connected.is_set():
            await outbox.wait()
            if failed:
                raise failed[0]
            if not connected.is_set():
                return
            if len(in_flight) >= MAX_IN_FLIGHT:
                outbox.rest()  # until an acknowledgement makes room
                continue
            for m in outbox.take(MAX_IN_FLIGHT - len(in_flight)):
                # A task hands its message to paho before its first wait, and tasks start in
                # the order they were made: the messages leave in outbox order.
                publish = asyncio.ensure_future(_publish(link, client, m, on_unsendable))
                in_flight[publish] = m
                publish.add_done_callback(settled)
    finally:
        for waiting in in_flight:
            waiting.cancel()
        outbox.give_back(list(in_flight.values()))


async def _publish(
    link: Link,
    client: aiomqtt.Client,
    m: Message,
    on_unsendable: Callable[[Message, Exception], None],
) -> None:
    try:
        await link.publish(client, m)
    except (ValueError, TypeError) as exc:  # paho refuses the topic or the payload
        on_unsendable(m, exc)


async def keep_connected(
    link: Link,
    stop: asyncio.Event,
    session: Callable[[aiomqtt.Client], Awaitable[None]],
    *,
    options: Callable[[], dict[str, Any]],
    rng: random.Random,
    label: str = "",
    on_connected: Callable[[], None] | None = None,
    on_lost: Callable[[BaseException], None] | None = None,
    on_cancelled: Callable[[aiomqtt.Client], Awaitable[None]] | None = None,
    on_closed: Callable[[], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    """Connect, run `session(client)`, and connect again until `stop` is set.

    Capped exponential backoff with jitter between failed attempts. A session that ends with a
    lost connection is reported to `on_lost` (default: a log line); any other failure is logged
    with its traceback and the connection starts again, except `FatalSessionError`, which ends
    the loop. `on_cancelled` runs when the task is cancelled while connected (to say goodbye).

    Args:
        link: the broker.
        stop: set to end the loop (the session must watch it too).
        session: serves one connection; returns when `stop` is set.
        options: the client options for the next attempt (see `Link.client`).
        rng: jitter source.
        label: named in log lines (" (power line)").
        on_connected: after each successful connect.
        on_lost: with the exception that ended a session.
        on_cancelled: when cancelled while connected.
        on_closed: after each session, connected or not.
        on_error: with an unforeseen exception that ended a session (after it is logged).
    """
    attempt = 0
    mq = link.mq
    # paho gives up on a CONNACK after one keepalive and closes the socket, but aiomqtt's
    # connect then waits on: a broker that was frozen (SIGSTOP, a stalled VM) would cost a
    # whole connect timeout before the next attempt. Wait no longer than paho does.
    connect_timeout = min(mq.connect_timeout_s, mq.keepalive_s + 1.0)
    while not stop.is_set():
        try:
            client = await link.connect(connect_timeout, **options())
        except CONNECT_ERRORS as exc:
            delay = backoff_delay(attempt, cap=mq.reconnect_max_s, rng=rng)
            attempt += 1
            log.warning(
                "cannot reach the broker at %s%s (%s); retrying in %.1f s",
                link.address,
                label,
                str(exc) or type(exc).__name__,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        attempt = 0
        if on_connected is not None:
            on_connected()
        log.info("connected to the broker at %s%s", link.address, label)
        try:
            try:
                await session(client)
            except* (aiomqtt.MqttError, TimeoutError) as group:
                # The session's task group wraps the disconnect; either way: reconnect.
                if on_lost is not None:
                    on_lost(group.exceptions[0])
                else:
                    log.warning("lost the broker%s: %s", label, group.exceptions[0])
            except* FatalSessionError:
                raise
            except* Exception as group:
                log.error(
                    "the connection to the broker%s failed unexpectedly; connecting again",
                    label,
                    exc_info=group.exceptions[0],
                )
                if on_error is not None:
                    on_error(group.exceptions[0])
        except asyncio.CancelledError:
            if on_cancelled is not None:
                await on_cancelled(client)
            raise
        finally:
            if on_closed is not None:
                on_closed()
            await disconnect(client)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff_delay(0, cap=1.0, rng=rng))


def quiet_teardown(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event-loop exception handler: aiomqtt's orphaned disconnect futures at debug level.

    After an abrupt disconnect paho leaves futures whose MqttError nobody awaits; the connection
    loop has already handled the disconnect itself. Everything else is handled as usual.
    """
    if isinstance(context.get("exception"), aiomqtt.MqttError):
        log.debug("after a disconnect: %s", context.get("exception"))
        return
    loop.default_exception_handler(context)


__all__ = [
    "CONNECT_ERRORS",
    "NO_DELAY",
    "Client",
    "FatalSessionError",
    "Incoming",
    "Link",
    "MqttError",
    "backoff_delay",
    "disconnect",
    "keep_connected",
    "messages",
    "quiet_teardown",
    "reason_codes",
    "send",
    "tls_parameters",
]
