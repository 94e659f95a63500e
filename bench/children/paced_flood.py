"""A steady flood of commands on `legwave/benchloop/set`: PER_S a second for SECONDS.

Run: python bench/children/paced_flood.py PORT PER_S SECONDS.
"""

from __future__ import annotations

import json
import random
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main(port: int, per_s: int, seconds: float) -> None:
    """Flood, paced, then stop."""
    rng = random.Random(1)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-flooder")
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        for _ in range(10):
            body = rng.choice([{"intensity": rng.randint(1, 7)}, {"mode": "wave"}, {"x": 1}])
            c.publish("legwave/benchloop/set", json.dumps(body), qos=0)
            n += 1
        time.sleep(max(0.0, t0 + n / per_s - time.monotonic()))
    c.loop_stop()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
