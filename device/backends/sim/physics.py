"""Physics of the simulated massager: pneumatics per zone, shared manifold, heaters, sensors.

Numbers: docs/device.md (Simulator). Per zone (both sleeves' chambers, fed in parallel):

* volume ``V(P) = V_dead + V_slack·(1 − e^(−P/P_s)) + C_t·P``, air ``N = V·(1 + P/P_atm)``;
  we integrate ``dP/dt = Q / (dN/dP)`` so no numeric inversion is needed per step;
* pump flow into the manifold ``Q = u·Q0·(1 − P_m/P_max)``, nothing below the stall duty;
* each open inlet joins its zone to the manifold through a linear conductance, so open zones share
  the pump and equalise (this is also how a zone with a stuck exhaust vents through the others);
* exhaust ``Q = k·√P``; leak ``Q = P/R``; faults add leaks, freeze valves or sensors;
* sensors see the zone through a first-order lag (tubing, ADC filter), plus noise and steps;
* heater ``C·dT/dt = P·on − (T − T_skin)/R_skin − (T − T_amb)/R_amb``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from device.backends.sim.config import SimConfig

P_ATM_MMHG = 760.0


@dataclass(slots=True)
class _Zone:
    slack: float
    pressure: float = 0.0
    sensed: float = 0.0
    inlet_open: bool = False
    exhaust_open: bool = True
    inlet_stuck_open: bool = False
    exhaust_stuck_closed: bool = False
    extra_leak_r: float = math.inf
    hose_off: bool = False
    sensor_frozen: float | None = None
    sensor_offset: float = 0.0


@dataclass(slots=True)
class _Pad:
    temperature: float
    r_skin: float
    on: bool = False
    stuck_on: bool = False


class Physics:
    """The simulated appliance's physical state, integrated lazily up to the clock's time."""

    def __init__(self, *, zones: int, heaters: int, config: SimConfig, start: float = 0.0) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        lo, hi = config.slack_volume_l
        self.zones = [
            _Zone(slack=lo + (hi - lo) * (i / (zones - 1) if zones > 1 else 0.5))
            for i in range(zones)
        ]
        # Each pad starts at its passive equilibrium between skin and room; sleeves differ a little.
        self.pads = [
            _Pad(temperature=0.0, r_skin=config.heater_r_skin * self._rng.uniform(0.9, 1.1))
            for _ in range(heaters)
        ]
        for pad in self.pads:
            pad.temperature = self._equilibrium(pad, power=0.0)
        self.pump_duty = 0.0
        self.pump_stalled = False
        self.heater_supply = False
        self.vibration = 0.0
        self.crashed = False
        self.time = start

    def _equilibrium(self, pad: _Pad, *, power: float) -> float:
        c = self.config
        g_skin, g_amb = 1.0 / pad.r_skin, 1.0 / c.heater_r_amb
        return (power + c.skin_c * g_skin + c.ambient_c * g_amb) / (g_skin + g_amb)

    # -- integration ------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Integrate the physics from the last time up to `t` in steps of at most `max_step_s`."""
        remaining = t - self.time
        if remaining <= 0:
            return
        if self._at_rest():
            self._rest(remaining)
            self.time = t
            return
        step = self.config.max_step_s
        while remaining > 1e-12:
            dt = step if remaining > step else remaining
            self._step(dt)
            remaining -= dt
        self.time = t

    def _at_rest(self) -> bool:
        """No air anywhere and none coming: every zone at 0 mmHg and no inlet open.

        Then nothing pneumatic moves (no flow at 0 mmHg, none through a closed inlet); only the
        sensors' lag and the pads' temperatures change, and both are linear.
        """
        for zone in self.zones:
            if zone.pressure > 0.0 or zone.inlet_open or zone.inlet_stuck_open:
                return False
        return True

    def _rest(self, dt: float) -> None:
        """`dt` at rest in closed form: what `_step` integrates, solved exactly, in one go.

        The sensors' first-order lag decays by ``e^(−dt/τ)``; each pad relaxes towards its
        equilibrium for its power with the time constant ``C / (1/R_skin + 1/R_amb)``.
        """
        c = self.config
        decay = math.exp(-dt / c.sensor_lag_s) if c.sensor_lag_s > 0 else 0.0
        for zone in self.zones:
            zone.sensed *= decay
        supply = self.heater_supply
        for pad in self.pads:
            power = c.heater_w if supply and (pad.on or pad.stuck_on) else 0.0
            target = self._equilibrium(pad, power=power)
            rate = (1.0 / pad.r_skin + 1.0 / c.heater_r_amb) / c.heater_capacity_j_k
            pad.temperature = target + (pad.temperature - target) * math.exp(-rate * dt)

    def _compliance(self, zone: _Zone) -> float:
        c = self.config
        p = zone.pressure
        e = math.exp(-p / c.slack_pressure_mmhg)
        volume = c.dead_volume_l + zone.slack * (1.0 - e) + c.tissue_compliance_l_per_mmhg * p
        dv = zone.slack / c.slack_pressure_mmhg * e + c.tissue_compliance_l_per_mmhg
        return dv * (1.0 + p / P_ATM_MMHG) + volume / P_ATM_MMHG

    def _step(self, dt: float) -> None:
        c = self.config
        zones = self.zones
        lag = 1.0 - math.exp(-dt / c.sensor_lag_s) if c.sensor_lag_s > 0 else 1.0
        flows = [0.0] * len(zones)
        open_zones = [i for i, z in enumerate(zones) if z.inlet_open or z.inlet_stuck_open]
        if open_zones:
            duty = self.pump_duty
            running = duty >= c.pump_stall_duty and not self.pump_stalled
            a = duty * c.pump_free_flow_l_min / 60.0 if running else 0.0
            g = c.inlet_conductance_l_s_mmhg
            total = sum(zones[i].pressure for i in open_zones)
            manifold = (a / g + total) / (len(open_zones) + a / (g * c.pump_max_mmhg))
            for i in open_zones:
                flows[i] = g * (manifold - zones[i].pressure)
        for i, zone in enumerate(zones):
            p = zone.pressure
            q = flows[i] - p / c.leak_r - p / zone.extra_leak_r
            if p > 0.0:
                root = math.sqrt(p)
                if zone.exhaust_open and not zone.exhaust_stuck_closed:
                    q -= c.exhaust_k * root
                if zone.hose_off:
                    q -= c.hose_off_k * root
            p += q / self._compliance(zone) * dt
            zone.pressure = p = p if p > 0.0 else 0.0
            zone.sensed += (p - zone.sensed) * lag
        supply = self.heater_supply
        for pad in self.pads:
            power = c.heater_w if supply and (pad.on or pad.stuck_on) else 0.0
            heat_flow = (
                power
                - (pad.temperature - c.skin_c) / pad.r_skin
                - (pad.temperature - c.ambient_c) / c.heater_r_amb
            )
            pad.temperature += heat_flow / c.heater_capacity_j_k * dt

    # -- sensors ----------------------------------------------------------------------------
    def sense_pressure(self, zone_index: int) -> float:
        """A noisy, quantised reading of one zone, as the sensor would give it."""
        c = self.config
        zone = self.zones[zone_index]
        if zone.sensor_frozen is not None:
            return zone.sensor_frozen
        raw = zone.sensed + zone.sensor_offset + self._rng.gauss(0.0, c.sensor_noise_mmhg)
        return round(raw / c.sensor_step_mmhg) * c.sensor_step_mmhg

    def sense_nothing(self) -> float:
        """What a dead channel reads: noise around zero, whatever the zone does."""
        c = self.config
        raw = self._rng.gauss(0.0, c.sensor_noise_mmhg)
        return round(raw / c.sensor_step_mmhg) * c.sensor_step_mmhg

    def sense_temperature(self, pad_index: int) -> float:
        """A noisy, quantised skin-side temperature reading of one pad."""
        c = self.config
        raw = self.pads[pad_index].temperature + self._rng.gauss(0.0, c.temp_noise_c)
        return round(raw / c.temp_step_c) * c.temp_step_c

    # -- process death ----------------------------------------------------------------------
    def release_lines(self) -> None:
        """The control process died: every line falls back to its unpowered default.

        Pull-downs turn pump, heaters and vibration off; normally-closed inlets close and
        normally-open exhausts open, so the sleeves vent by physics, not by software.
        """
        self.crashed = True
        self.pump_duty = 0.0
        self.heater_supply = False
        self.vibration = 0.0
        for pad in self.pads:
            pad.on = False
        for zone in self.zones:
            zone.inlet_open = False
            zone.exhaust_open = True
