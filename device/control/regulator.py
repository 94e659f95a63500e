"""Per-zone pressure regulator: inlet, exhaust and a shared pump, tuned against overshoot.

A zone with a target fills (inlet open, exhaust closed) until it is `stop_early` below it, then
holds sealed; it tops up below `target − refill_below` and bleeds through the exhaust above
`target + bleed_above`. The pump slows inside `pump_ramp` of the target, never below the duty
where a diaphragm pump stalls. A zone without a target vents.

All inlets share one manifold: a full zone and an empty one with both inlets open would equalise,
the full one emptying into the other. So only zones whose pressures are within `share_band` of
the highest filling zone open together; the others wait sealed until those are done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device.hal import Orders
    from device.settings import RegulatorTuning


class PressureRegulator:
    """Turns per-zone targets and pressures into valve and pump orders."""

    def __init__(self, *, zones: int, tuning: RegulatorTuning) -> None:
        self.tuning = tuning
        self._filling = [False] * zones
        self._bleeding = [False] * zones
        self._target: list[float | None] = [None] * zones

    def regulate(self, pressures: list[float], targets: list[float | None], orders: Orders) -> None:
        """Write inlet, exhaust and pump orders for `targets` into `orders`."""
        tu = self.tuning
        filling = self._filling
        for i, target in enumerate(targets):
            p = pressures[i]
            if target is None:
                self._filling[i] = self._bleeding[i] = False
                orders.inlet_open[i] = False
                orders.exhaust_open[i] = True
                self._target[i] = None
                continue
            if self._target[i] is None:
                self._filling[i] = True  # a fresh inflation
            self._target[i] = target
            if self._filling[i]:
                if p >= target - tu.stop_early_mmhg:
                    self._filling[i] = False
            elif p < target - tu.refill_below_mmhg:
                self._filling[i] = True
            if self._bleeding[i]:
                self._bleeding[i] = p > target + tu.bleed_until_mmhg
            elif p > target + tu.bleed_above_mmhg:
                self._bleeding[i] = True
                self._filling[i] = False
            orders.exhaust_open[i] = self._bleeding[i]
        highest = max((pressures[i] for i, f in enumerate(filling) if f), default=None)
        pump = 0.0
        for i, target in enumerate(targets):
            opens = (
                highest is not None and filling[i] and pressures[i] >= highest - tu.share_band_mmhg
            )
            orders.inlet_open[i] = opens
            if opens and target is not None:
                share = min(max((target - pressures[i]) / tu.pump_ramp_mmhg, 0.0), 1.0)
                pump = max(pump, tu.pump_min_duty + (1.0 - tu.pump_min_duty) * share)
        orders.pump = pump
