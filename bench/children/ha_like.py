"""A Home Assistant-like subscriber: counts every `legwave/+/state` it receives.

Run: python bench/children/ha_like.py PORT; prints "ready" once subscribed, then, after a line
on stdin and two seconds for what is still on its way, the counts per topic as JSON.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main(port: int) -> None:
    """Count until told to stop."""
    seen: collections.Counter[str] = collections.Counter()

    def on_message(client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        seen[message.topic] += 1

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ha")
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe("legwave/+/state", qos=1)
    c.loop_start()
    print("ready", flush=True)
    sys.stdin.readline()  # the run is over: wait for what is still on its way, then count
    time.sleep(2.0)
    c.loop_stop()
    print(json.dumps(dict(seen)), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
