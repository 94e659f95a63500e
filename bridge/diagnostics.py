"""What `…/diagnostics` reports about the agent itself: its control loop's lateness, the host."""

from __future__ import annotations

import heapq
import math
from pathlib import Path

THERMAL = Path("/sys/class/thermal")
_CPU_ZONES = ("cpu", "soc", "x86_pkg_temp", "coretemp")


def lateness_summary(lateness_s: list[float]) -> tuple[float | None, float | None]:
    """The 99th percentile and the largest of tick latenesses (seconds), in ms; None if none."""
    if not lateness_s:
        return None, None
    # Called from the control tick once a minute: only the top 1 % is ordered, not the 3,000
    # ticks of a minute at 50 Hz (a whole sort would cost a Pi Zero 2 W half a period).
    n = len(lateness_s)
    top = heapq.nlargest(n - max(math.ceil(0.99 * n) - 1, 0), lateness_s)
    return round(1000.0 * max(top[-1], 0.0), 2), round(1000.0 * max(top[0], 0.0), 2)


def cpu_temperature_c(root: Path = THERMAL) -> float | None:
    """The CPU's temperature from the kernel's thermal zones (a Pi's `cpu-thermal`), or None.

    A zone whose type names the CPU wins; otherwise the first zone. None where there is none
    (most virtual machines and containers) or it cannot be read.
    """
    try:
        zones = sorted(root.glob("thermal_zone*"), key=lambda z: int(z.name[12:] or 0))
        if not zones:
            return None
        named = [z for z in zones if any(c in _type(z) for c in _CPU_ZONES)]
        raw = (named or zones)[0].joinpath("temp").read_text().strip()
        return round(int(raw) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def _type(zone: Path) -> str:
    try:
        return zone.joinpath("type").read_text().strip().lower()
    except OSError:
        return ""
