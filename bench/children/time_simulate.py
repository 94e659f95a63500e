"""Times a simulated hour with the tick's modules compiled by mypyc (PYTHONPATH names them).

Run from the folder that holds the compiled copy; prints "WALL_S TICKS END_REASON".
"""

from __future__ import annotations

import time

import device.control.supervisor as sup
from device.settings import SessionSettings
from device.simulate import simulate


def main() -> None:
    """Simulate an hour, once."""
    assert sup.__file__ is not None and sup.__file__.endswith(".so"), sup.__file__
    t = time.perf_counter()
    report = simulate(SessionSettings(duration_min=60), seed=0)
    print(time.perf_counter() - t, report.ticks, report.end_reason)


if __name__ == "__main__":
    main()
