"""A whole device on the simulator and a virtual clock, driven tick by tick: `SimulatedDevice`.

As gpiozero ships `MockFactory` for code that drives pins, legwave ships this for code that
drives a massager: `legwave simulate`, the test suite and the benchmarks all run a device through
it. It is the real massager, supervisor and runner; only the hardware (the simulator's parts) and
the clock are stand-ins. A minute of device time costs a fraction of a second.

    device = SimulatedDevice(PRESETS["recovery"])
    device.start()              # START, then run until the session is running
    device.run(60.0)            # a minute of ticks
    device.send(Action.STOP)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from device.backends.sim import FaultInjection, SimConfig, SimulatedMassager
from device.control.massager import Action, Command, Event, EventType, Massager, Outcome, Status
from device.hal import Hardware, Orders
from device.runner import Runner, VirtualClock
from device.settings import DeviceSettings, SessionSettings, SettingChanges

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
"""Device time 0 on the wall clock (session records and `ends_at` use it)."""


class SimulatedDevice:
    """Massager + simulator + runner on a virtual clock.

    Args:
        settings: the session settings to start from (the defaults when None).
        device: zones, timings and limits (the default device when None).
        faults: hardware or wiring faults to inject, with their times.
        seed: the sensor noise's seed.
        epoch: device time 0 on the wall clock.
        new_id: makes session ids (default: s1, s2, …).
    """

    def __init__(
        self,
        settings: SessionSettings | None = None,
        *,
        device: DeviceSettings | None = None,
        faults: list[FaultInjection] | None = None,
        seed: int = 0,
        epoch: datetime = EPOCH,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.device = device or DeviceSettings()
        self.clock = VirtualClock()
        self.sim = SimulatedMassager(
            zones=len(self.device.zones),
            heaters=self.device.heaters,
            clock=self.clock.now,
            config=SimConfig(seed=seed),
            faults=faults or (),
        )
        ids = itertools.count(1)
        self.massager = Massager(
            device=self.device,
            settings=settings,
            wall=lambda t: epoch + timedelta(seconds=t),
            new_id=new_id or (lambda: f"s{next(ids)}"),
        )
        self.runner = Runner(massager=self.massager, hardware=self.hardware(), clock=self.clock)
        self.journal: list[Event] = []
        """Every event the device emitted, in order."""
        self.events: list[str] = []
        """The same, by name; a fault as ``fault:<code>``."""
        self.ticks = 0
        self.tick()

    def hardware(self) -> Hardware:
        """What the runner drives: the simulator's parts (a subclass puts a backend between)."""
        return self.sim.hardware

    def before_tick(self) -> None:
        """Called at each tick's time, before the control step."""

    def after_tick(self) -> None:
        """Called after the control step applied its orders."""

    @property
    def now(self) -> float:
        """Device time, seconds."""
        return self.clock.t

    @property
    def status(self) -> Status:
        """Where the device is in its lifecycle."""
        return self.massager.status

    @property
    def pressures(self) -> list[float]:
        """True (physical) pressures per zone, not sensor readings."""
        return [z.pressure for z in self.sim.physics.zones]

    @property
    def orders(self) -> Orders:
        """What the last tick ordered."""
        assert self.runner.orders is not None  # noqa: S101 - set by the first tick
        return self.runner.orders

    def tick(self) -> Orders:
        """One control period."""
        self.ticks += 1
        self.clock.t = self.ticks * self.runner.period
        self.before_tick()
        orders = self.runner.tick(self.clock.t)
        self.after_tick()
        self._collect()
        return orders

    def _collect(self) -> None:
        for e in self.massager.drain_events():
            self.journal.append(e)
            fault = e.event_type is EventType.FAULT_RAISED
            self.events.append(f"fault:{e.data['code']}" if fault else e.event_type.value)

    def run(self, seconds: float) -> None:
        """Tick for `seconds` of device time."""
        for _ in range(round(seconds / self.runner.period)):
            self.tick()

    def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Tick until `condition()` holds (True) or `timeout` seconds passed (False)."""
        end = self.now + timeout
        while self.now < end:
            self.tick()
            if condition():
                return True
        return False

    def send(self, action: Action | None = None, **changes: Any) -> Outcome:
        """Submit a command now, as the agent does.

        Raises:
            ValidationError: a change is out of range (a command never gets this far).
            CommandRejectedError: the device refused it; nothing changed.
        """
        outcome = self.runner.submit(Command(action=action, changes=SettingChanges(**changes)))
        self._collect()
        return outcome

    def start(self, timeout: float = 20.0) -> None:
        """START, then tick until the session runs (after its fit check).

        Raises:
            RuntimeError: it did not run within `timeout` seconds (the events say why).
        """
        self.send(Action.START)
        if not self.run_until(lambda: self.status is Status.RUNNING, timeout):
            raise RuntimeError(f"the session did not start: {self.events}")


__all__ = ["EPOCH", "SimulatedDevice"]
