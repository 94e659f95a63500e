"""Heat: a PI controller per pad, switched in a time-proportioning window (never fast PWM)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device.settings import HeatTuning


class HeatController:
    """Decides, per pad, whether its heater is on at this instant."""

    def __init__(self, *, heaters: int, tuning: HeatTuning) -> None:
        self.tuning = tuning
        self._integral = [0.0] * heaters
        self._window_start = [0.0] * heaters
        self._on_until = [0.0] * heaters
        self._last: float | None = None

    def reset(self) -> None:
        """Forget the integral and the current window (heat turned off)."""
        for i in range(len(self._integral)):
            self._integral[i] = 0.0
            self._on_until[i] = 0.0
            self._window_start[i] = 0.0
        self._last = None

    def update(self, now: float, temperatures: list[float], setpoint: float) -> list[bool]:
        """Return heater on/off for each pad at `now`, aiming at `setpoint` °C."""
        tu = self.tuning
        dt = 0.0 if self._last is None else now - self._last
        first = self._last is None
        self._last = now
        result = []
        for i, temp in enumerate(temperatures):
            error = setpoint - temp
            integral = self._integral[i] + tu.ki_per_c_s * error * dt
            self._integral[i] = min(max(integral, 0.0), tu.integral_max)
            if first or now - self._window_start[i] >= tu.window_s:
                duty = min(max(tu.kp_per_c * error + self._integral[i], 0.0), 1.0)
                self._window_start[i] = now
                self._on_until[i] = now + duty * tu.window_s
            result.append(now < self._on_until[i])
        return result
