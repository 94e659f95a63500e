"""The appliance on a Raspberry Pi: parts on GPIO lines, sensors in sampler threads.

The package itself loads nothing of the backend: `device.backends.pi.config`, the wiring model
that every configuration carries, loads on the simulator without it. `PiHardware`, `open_gpio`,
`open_i2c` and `CalibrationError` come from `device.backends.pi.hardware` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device.backends.pi.config import PiConfig
    from device.backends.pi.hardware import CalibrationError, PiHardware, open_gpio, open_i2c

_HARDWARE = frozenset({"CalibrationError", "PiHardware", "open_gpio", "open_i2c"})


def __getattr__(name: str) -> Any:
    if name in _HARDWARE:
        from device.backends.pi import hardware

        return getattr(hardware, name)
    if name == "PiConfig":
        from device.backends.pi.config import PiConfig

        return PiConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CalibrationError", "PiConfig", "PiHardware", "open_gpio", "open_i2c"]
