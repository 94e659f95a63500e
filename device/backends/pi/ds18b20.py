"""DS18B20 temperature sensors through the kernel's 1-wire driver (``w1_therm``, sysfs).

Reading ``w1_slave`` makes the kernel run a conversion (up to 750 ms at 12 bits), so the
sensors are read in a sampler thread, never in the control tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

POWER_ON_RESET_MC = 85_000  # the scratchpad's value before the first conversion


def parse_w1_slave(text: str) -> float | None:
    """°C from a ``w1_slave`` file, or None when the CRC failed or the reading is the reset value.

    The file has two lines: the scratchpad bytes with ``crc=xx YES`` (or ``NO``), then the bytes
    again with ``t=<millidegrees>``.
    """
    lines = text.strip().splitlines()
    if len(lines) != 2 or not lines[0].rstrip().endswith("YES"):
        return None
    _, sep, value = lines[1].rpartition("t=")
    if not sep:
        return None
    try:
        millidegrees = int(value.strip())
    except ValueError:
        return None
    if millidegrees == POWER_ON_RESET_MC:
        return None
    return millidegrees / 1000.0


class Ds18b20Bus:
    """The configured DS18B20 sensors, read one after the other.

    Args:
        root: the 1-wire devices folder (``/sys/bus/w1/devices``).
        sensors: sensor ids, in heater order.
    """

    def __init__(self, root: Path, sensors: list[str]) -> None:
        self.paths = [root / sensor / "w1_slave" for sensor in sensors]

    def read(self) -> list[float | None]:
        """One reading per sensor; None for a sensor that is missing or failed its CRC."""
        out: list[float | None] = []
        for path in self.paths:
            try:
                out.append(parse_w1_slave(path.read_text()))
            except OSError:
                out.append(None)
        return out
