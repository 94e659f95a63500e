"""A hostile MQTT client: publishes junk commands on a device's `…/set` as fast as asked.

It speaks MQTT 3.1.1 over a plain socket with packets built once in advance, so it can send far
faster than any MQTT library: the flood is limited by the broker and the machine, not by the
flooder. Run as a script (the flood tests and `bench/flood.py` start it with `flooder_command`,
as a process of its own, as an attacker on the network would be):

    python testkit/flooder.py --port 1883 --topic legwave/dev/set --rate 4000 --seconds 5

It prints one JSON line at the end: ``{"sent": N, "seconds": S}``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path


def flooder_command(
    port: int, topic: str, *, rate: float, seconds: float, payload: str | None = None
) -> list[str]:
    """The command line of a flooder process on `topic` (on 127.0.0.1:`port`)."""
    extra = [] if payload is None else ["--payload", payload]
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--port",
        str(port),
        "--topic",
        topic,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        *extra,
    ]


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def connect_packet(client_id: str) -> bytes:
    """MQTT 3.1.1 CONNECT, clean session, keepalive off."""
    body = _string(b"MQTT") + bytes([4, 0x02]) + (0).to_bytes(2, "big")
    body += _string(client_id.encode())
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes) -> bytes:
    """MQTT PUBLISH at QoS 0."""
    body = _string(topic.encode()) + payload
    return b"\x30" + _remaining_length(len(body)) + body


def junk(rng: random.Random) -> bytes:
    """One hostile or broken command: everything but a real `stop` or `vent`."""
    kinds: list[Callable[[], bytes]] = [
        lambda: b"{" + rng.randbytes(rng.randint(0, 40)),  # broken JSON
        lambda: b'{"x": "' + b"a" * 5000 + b'"}',  # over the 4 KiB limit
        lambda: json.dumps({"intensity": rng.choice([0, 9, "high", None])}).encode(),
        lambda: json.dumps({"action": rng.choice(["explode", 3, "", "stopp", "ventt"])}).encode(),
        lambda: json.dumps({"intensity": rng.randint(1, 7)}).encode(),  # valid
        lambda: json.dumps({"ts": 1.0, "action": "start"}).encode(),  # stale
        lambda: b'{"transaction": NaN, "vent": 1}',  # not JSON; looks urgent at a glance
        lambda: rng.randbytes(rng.randint(0, 200)),
    ]
    return rng.choice(kinds)()


def main() -> int:
    """Flood until the time is up; print what was sent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="messages a second; 0: at once")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--burst", type=int, default=0, help="send this many at once, then stop")
    parser.add_argument("--payload", help="send this payload every time instead of junk")
    args = parser.parse_args()
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stopped.append(signum))  # end, and report
    rng = random.Random(args.seed)
    fixed = args.payload.encode() if args.payload is not None else None
    packets = [
        publish_packet(args.topic, fixed if fixed is not None else junk(rng)) for _ in range(1000)
    ]
    batch = 20
    chunks = [b"".join(packets[i : i + batch]) for i in range(0, len(packets), batch)]
    with socket.create_connection((args.host, args.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(connect_packet(f"flooder-{args.seed}-{time.monotonic_ns()}"))
        if sock.recv(4)[:1] != b"\x20":
            print("no CONNACK", file=sys.stderr)
            return 1
        sent = 0
        t0 = time.monotonic()
        end = t0 + args.seconds
        i = 0
        if args.burst:
            sock.sendall(b"".join(packets[k % len(packets)] for k in range(args.burst)))
            sent, end = args.burst, t0
        while (now := time.monotonic()) < end and not stopped:
            sock.sendall(chunks[i % len(chunks)])
            i += 1
            sent += batch
            if args.rate > 0:
                ahead = t0 + sent / args.rate - now
                if ahead > 0:
                    time.sleep(ahead)
        seconds = time.monotonic() - t0
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    print(json.dumps({"sent": sent, "seconds": round(seconds, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
