"""Another process's client: publishes `{"action": LINE}` for each line on stdin.

Run: python bench/children/publisher.py PORT TOPIC; prints "ready", then for each line the
monotonic time just before its publish.
"""

from __future__ import annotations

import json
import socket
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main(port: int, topic: str) -> None:
    """Publish until stdin closes."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    c.connect("127.0.0.1", port)
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    c.loop_start()
    print("ready", flush=True)
    for line in sys.stdin:
        sent = time.monotonic()
        c.publish(topic, json.dumps({"action": line.strip()}), qos=1)
        print(sent, flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
