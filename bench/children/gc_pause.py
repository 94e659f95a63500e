"""A full garbage collection in a freshly built agent, before and after `gc.freeze()`.

Run from the checkout; prints "BEFORE_MS AFTER_MS FROZEN_OBJECTS".
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bridge.config import load_settings
from bridge.service import build


def pause_ms() -> float:
    """The shortest of five full collections, ms."""
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        gc.collect()
        best = min(best, time.perf_counter() - t)
    return 1000 * best


def main() -> None:
    """Build an agent (never connected), measure, freeze, measure."""
    settings = load_settings(None, device_id="benchgc", state_dir=Path(tempfile.mkdtemp()))
    agent = build(settings, host="127.0.0.1", port=1)
    before = pause_ms()
    gc.freeze()
    print(before, pause_ms(), gc.get_freeze_count())
    del agent


if __name__ == "__main__":
    main()
