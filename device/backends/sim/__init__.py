"""Simulator backend: the HAL Protocols on top of `Physics`, with faults injectable in time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from device.backends.sim.config import SimConfig
from device.backends.sim.faults import FaultInjection, FaultSpecError, SimFault
from device.backends.sim.physics import Physics
from device.hal import Hardware, Sample

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

SYNC_RESOLUTION_S = 0.001
"""Calls closer together than this see the physics at one instant.

Every part brings the physics up to the clock before it reads or writes. In real time the clock
moves a few microseconds between the reads and the writes of one tick, and integrating each of
those slices on its own cost about twenty physics steps per tick instead of one. A millisecond is
far below the fastest time constant of the model (the sensor's 40 ms lag); in virtual time the
ticks are whole periods apart and nothing changes.
"""

__all__ = [
    "FaultInjection",
    "FaultSpecError",
    "SimConfig",
    "SimFault",
    "SimulatedMassager",
]


class SimulatedMassager:
    """A simulated appliance. Its parts integrate the physics lazily up to `clock()`.

    Args:
        zones: number of zones.
        heaters: number of heating pads (0-2).
        clock: monotonic time source shared with the control loop.
        config: physical constants and the noise seed.
        faults: faults to inject at their time.
    """

    def __init__(
        self,
        *,
        zones: int,
        heaters: int,
        clock: Callable[[], float],
        config: SimConfig | None = None,
        faults: Iterable[FaultInjection] = (),
    ) -> None:
        self.clock = clock
        self.physics = Physics(
            zones=zones, heaters=heaters, config=config or SimConfig(), start=clock()
        )
        self._pending = sorted(faults, key=lambda f: f.at_s)
        self._t0 = clock()
        self._synced: float | None = None  # every part syncs: do the work once per instant
        self.injected: list[tuple[FaultInjection, float]] = []
        # the wiring: which zone each inlet feeds and each sensor channel reads (swaps),
        # exhausts that do the opposite of their order, dead channels, sensor gains
        self.inlet_feeds = list(range(zones))
        self.sensor_reads = list(range(zones))
        self.exhaust_inverted = [False] * zones
        self.sensor_dead = [False] * zones
        self.sensor_gain = [1.0] * zones
        self.hardware = Hardware(
            pump=_Pump(self),
            inlets=[_Valve(self, i, normally_open=False) for i in range(zones)],
            exhausts=[_Valve(self, i, normally_open=True) for i in range(zones)],
            pressure=[_PressureSensor(self, i) for i in range(zones)],
            heaters=[_Pad(self, i) for i in range(heaters)],
            temperature=[_Thermometer(self, i) for i in range(heaters)],
            heater_supply=_Supply(self),
            vibration=_Vibration(self),
        )

    def inject(self, injection: FaultInjection) -> None:
        """Schedule one more fault."""
        self._pending.append(injection)
        self._pending.sort(key=lambda f: f.at_s)
        self._synced = None

    @property
    def crashed(self) -> bool:
        """True once a `process_crash` fault has released every line."""
        return self.physics.crashed

    def sync(self) -> float:
        """Bring the physics up to the clock's time, injecting faults that fell due on the way."""
        now = self.clock()
        if self._synced is not None and now - self._synced < SYNC_RESOLUTION_S:
            return now
        while self._pending and self._t0 + self._pending[0].at_s <= now:
            injection = self._pending.pop(0)
            self.physics.advance_to(self._t0 + injection.at_s)
            self._apply(injection)
        self.physics.advance_to(now)
        self._synced = now
        return now

    def _apply(self, injection: FaultInjection) -> None:
        p = self.physics
        i = injection.target
        match injection.fault:
            case SimFault.HOSE_DISCONNECT:
                for zone in p.zones:
                    zone.hose_off = True
            case SimFault.SLOW_LEAK:
                p.zones[_zone(i)].extra_leak_r = p.config.slow_leak_r
            case SimFault.EXHAUST_STUCK_CLOSED:
                p.zones[_zone(i)].exhaust_stuck_closed = True
            case SimFault.INLET_STUCK_OPEN:
                p.zones[_zone(i)].inlet_stuck_open = True
            case SimFault.PUMP_STALL:
                p.pump_stalled = True
            case SimFault.SENSOR_STUCK:
                p.zones[_zone(i)].sensor_frozen = p.sense_pressure(_zone(i))
            case SimFault.SENSOR_OFFSET:
                p.zones[_zone(i)].sensor_offset = p.config.sensor_offset_mmhg
            case SimFault.HEATER_RUNAWAY:
                if p.pads:
                    p.pads[_zone(i) % len(p.pads)].stuck_on = True
            case SimFault.PROCESS_CRASH:
                p.release_lines()
            case SimFault.INLET_TUBES_SWAPPED:
                a, b = _pair(_zone(i), len(p.zones))
                self.inlet_feeds[a], self.inlet_feeds[b] = self.inlet_feeds[b], self.inlet_feeds[a]
            case SimFault.SENSOR_CHANNELS_SWAPPED:
                a, b = _pair(_zone(i), len(p.zones))
                self.sensor_reads[a], self.sensor_reads[b] = (
                    self.sensor_reads[b],
                    self.sensor_reads[a],
                )
            case SimFault.EXHAUST_INVERTED:
                self.exhaust_inverted[_zone(i)] = True
            case SimFault.SENSOR_DEAD:
                self.sensor_dead[_zone(i)] = True
            case SimFault.DIVIDER_INVERTED:
                # 10 kΩ to GND and 20 kΩ in series instead of the other way round: a third of
                # the sensor's volts reach the ADC, not two thirds. The zero at start takes out
                # the offset that makes; what remains is half of every pressure.
                self.sensor_gain[_zone(i)] = 0.5
        self.injected.append((injection, p.time - self._t0))


def _zone(target: int | None) -> int:
    return 0 if target is None else target


def _pair(zone: int, zones: int) -> tuple[int, int]:
    """The zone and the one it is swapped with: the next one, or for the last, the one before."""
    return (zone, zone + 1) if zone + 1 < zones else (zone - 1, zone)


class _Part:
    def __init__(self, sim: SimulatedMassager, index: int = 0) -> None:
        self.sim = sim
        self.index = index

    def _writable(self) -> bool:
        """Bring physics up to now; False once the process is 'dead' (its orders go nowhere)."""
        self.sim.sync()
        return not self.sim.physics.crashed


class _Pump(_Part):
    def set_duty(self, duty: float) -> None:
        if self._writable():
            self.sim.physics.pump_duty = min(max(duty, 0.0), 1.0)

    def safe_state(self) -> None:
        self.set_duty(0.0)


class _Valve(_Part):
    def __init__(self, sim: SimulatedMassager, index: int, *, normally_open: bool) -> None:
        super().__init__(sim, index)
        self.normally_open = normally_open

    def set_open(self, is_open: bool) -> None:
        if self._writable():
            sim = self.sim
            if self.normally_open:
                sim.physics.zones[self.index].exhaust_open = (
                    is_open != sim.exhaust_inverted[self.index]
                )
            else:
                sim.physics.zones[sim.inlet_feeds[self.index]].inlet_open = is_open

    def safe_state(self) -> None:
        self.set_open(self.normally_open)


class _Pad(_Part):
    def set_on(self, on: bool) -> None:
        if self._writable():
            self.sim.physics.pads[self.index].on = on

    def safe_state(self) -> None:
        self.set_on(False)


class _Supply(_Part):
    def set_on(self, on: bool) -> None:
        if self._writable():
            self.sim.physics.heater_supply = on

    def safe_state(self) -> None:
        self.set_on(False)


class _Vibration(_Part):
    def set_duty(self, duty: float) -> None:
        if self._writable():
            self.sim.physics.vibration = min(max(duty, 0.0), 1.0)

    def safe_state(self) -> None:
        self.set_duty(0.0)


class _PressureSensor(_Part):
    def read(self) -> Sample:
        sim = self.sim
        now = sim.sync()
        if sim.sensor_dead[self.index]:
            return Sample(sim.physics.sense_nothing(), now)
        value = sim.physics.sense_pressure(sim.sensor_reads[self.index])
        return Sample(value * sim.sensor_gain[self.index], now)


class _Thermometer(_Part):
    def read(self) -> Sample:
        now = self.sim.sync()
        return Sample(self.sim.physics.sense_temperature(self.index), now)
