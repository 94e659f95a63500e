"""A simulated massager on a virtual clock, driven tick by tick through the public API."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from device.backends.sim import FaultInjection, SimConfig, SimulatedMassager
from device.control.massager import Action, Command, Massager, Outcome, Status
from device.hal import Hardware, Orders
from device.runner import Runner, VirtualClock
from device.settings import DeviceSettings, SessionSettings, SettingChanges

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Rig:
    """Massager + simulator + runner; `run(s)` advances virtual time tick by tick."""

    def __init__(
        self,
        settings: SessionSettings | None = None,
        *,
        device: DeviceSettings | None = None,
        faults: list[FaultInjection] | None = None,
        seed: int = 0,
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
            wall=lambda t: EPOCH + timedelta(seconds=t),
            new_id=lambda: f"s{next(ids)}",
        )
        self.runner = Runner(massager=self.massager, hardware=self.hardware(), clock=self.clock)
        self.events: list[str] = []
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
        return self.clock.t

    @property
    def status(self) -> Status:
        return self.massager.status

    @property
    def pressures(self) -> list[float]:
        """True (physical) pressures, not sensor readings."""
        return [z.pressure for z in self.sim.physics.zones]

    @property
    def orders(self) -> Orders:
        assert self.runner.orders is not None
        return self.runner.orders

    def tick(self) -> Orders:
        self.clock.t += self.runner.period
        self.before_tick()
        orders = self.runner.tick(self.clock.t)
        self.after_tick()
        self.events += [
            e.event_type if e.event_type != "fault_raised" else f"fault:{e.data['code']}"
            for e in self.massager.drain_events()
        ]
        return orders

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.runner.period)):
            self.tick()

    def run_until(self, condition: object, timeout: float) -> bool:
        assert callable(condition)
        end = self.now + timeout
        while self.now < end:
            self.tick()
            if condition():
                return True
        return False

    def send(self, action: Action | None = None, **changes: Any) -> Outcome:
        return self.runner.submit(Command(action=action, changes=SettingChanges(**changes)))

    def start(self) -> None:
        self.send(Action.START)
        assert self.run_until(lambda: self.status is Status.RUNNING, 20), self.events
