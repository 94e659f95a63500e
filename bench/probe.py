"""A person's client for the flood benchmark: publishes what it reads, says when it sent it.

Reads lines ``TOPIC PAYLOAD`` on stdin, publishes each at QoS 1 and prints the monotonic time
(the clock every process on the machine shares) just before the publish. Run by bench/flood.py:

    python bench/probe.py PORT
"""

from __future__ import annotations

import socket
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def main() -> int:
    """Publish every line read from stdin until it closes."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-probe", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect("127.0.0.1", int(sys.argv[1]))
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    print("ready", flush=True)
    for line in sys.stdin:
        topic, _, payload = line.strip().partition(" ")
        sent = time.monotonic()
        client.publish(topic, payload, qos=1)
        print(sent, flush=True)
    client.loop_stop()
    client.disconnect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
