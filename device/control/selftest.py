"""The commissioning self-test: is every part wired to the zone and the job it is meant for?

A procedure of small steps, each a few seconds of orders and a look at the sensors, run by the
massager tick by tick (the supervisor checks every order, as in a session). Per zone, at low
pressure, with every other zone sealed:

1. **fill**: open only this zone's inlet and pump until a sensor rises `RISE_MMHG`. Its own
   sensor should rise, and no other: another one rising means swapped inlet tubes or swapped
   sensor channels (the vent step tells which); nothing rising means an exhaust that does not
   close (wired inverted, tested next) or a sensor that does not see its zone (tested by moving
   the air into a neighbour);
2. **hold**: both valves closed for `HOLD_S`: the zone's leak rate (a leak is held a second
   time and reported only when both holds show it: one sensor glitch is not a leak);
3. **vent**: only this zone's exhaust opens: it must vent below the vent threshold in time.

Then each heater: on, its own sensor must warm at a plausible rate (the other pad's sensor must
not be the one warming); then the supply switch alone is opened and the warming must stop.
Then the vibration motor, on and off (it has no sensor: the report says so).

The procedure is a generator: it yields a `Drive` (what the parts should do this tick) and
receives an `Observation` (what the sensors read). It never raises pressure above
`FILL_TARGET_MMHG` by its own sensors; a sensor that sees nothing is bounded by `FILL_TIMEOUT_S`
of pumping at `PUMP_DUTY`.
"""

from __future__ import annotations

import math
from collections.abc import Generator  # at run time: see device/hal/hardware.py
from dataclasses import dataclass, field
from typing import Any

SELFTEST_RESULTS = ("never_run", "running", "passed", "failed", "aborted")
"""What the self-test sensor can say."""
RISE_MMHG = 10.0
"""A zone 'rose' when its sensor reads this much above its vented baseline."""
FILL_TARGET_MMHG = 20.0
"""The set-point the supervisor is told while a zone fills (its overpressure rule applies)."""
PUMP_DUTY = 0.6
FILL_TIMEOUT_S = 10.0
"""Pumping time after which a zone that nothing sees rising is given up on."""
HOLD_S = 4.0
HOLDS = 2
"""A zone that seems to leak is held once more: only a leak both holds show is reported."""
LEAK_FRACTION_S = 0.01
"""A sealed zone that loses more than this fraction of its pressure a second leaks (a sound
sleeve loses about 0.1 %; at session pressures the supervisor's own leak rule applies)."""
VENT_TIMEOUT_S = 5.0
SETTLE_S = 0.5
INVERTED_PROBE_S = 3.0
JOIN_S = 2.0
JOIN_RISE_MMHG = 2.0
"""Joining a zone to a vented neighbour raises the neighbour this much if the zone held air."""
VENT_ALL_TIMEOUT_S = 15.0
HEAT_TIMEOUT_S = 60.0
HEAT_RISE_C = 1.0
HEAT_MAX_C = 40.0
HEAT_MIN_RATE_C_S = 0.01
HEAT_MAX_RATE_C_S = 1.0
CUT_S = 8.0
VIBRATION_S = 1.0


@dataclass(slots=True)
class Drive:
    """What the parts should do this tick (everything else: its safe state)."""

    pump: float = 0.0
    inlets: frozenset[int] = frozenset()
    closed_exhausts: frozenset[int] | None = None
    """Exhausts told to close; None: every exhaust open."""
    targets: dict[int, float] = field(default_factory=dict)
    heaters: frozenset[int] = frozenset()
    heater_supply: bool = False
    vibration: float = 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    """What the sensors read this tick."""

    now: float
    pressures: list[float]
    temperatures: list[float]


@dataclass(slots=True)
class _Result:
    """Problems found in one part."""

    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No problem found."""
        return not self.problems

    def measured(self) -> dict[str, Any]:
        """What was measured (a subclass says)."""
        return {}

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the report."""
        return {"passed": self.passed, **self.measured(), "problems": list(self.problems)}


@dataclass(slots=True)
class ZoneResult(_Result):
    """One zone's measurements and problems."""

    zone: str = ""
    fill_s: float | None = None
    """Pumping time until its sensor rose `RISE_MMHG`: the pump's flow into this zone."""
    rise_mmhg_s: float | None = None
    leak_mmhg_s: float | None = None
    vent_s: float | None = None

    def measured(self) -> dict[str, Any]:
        """Fill, rise, leak and vent."""
        return {
            "fill_s": _round(self.fill_s, 2),
            "rise_mmhg_s": _round(self.rise_mmhg_s, 2),
            "leak_mmhg_s": _round(self.leak_mmhg_s, 2),
            "vent_s": _round(self.vent_s, 2),
        }


@dataclass(slots=True)
class HeaterResult(_Result):
    """One heater's measurements and problems."""

    heater: int = 0
    rise_c_s: float | None = None
    cut: bool = False

    def measured(self) -> dict[str, Any]:
        """Its warming rate, and whether the supply switch stops it."""
        return {"rise_c_s": _round(self.rise_c_s, 3), "supply_cuts_it": self.cut}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


class SelfTest:
    """One run of the self-test; `step()` once per tick until `done`.

    Args:
        zones: zone names, distal first.
        heaters: number of heaters (each with its own temperature sensor).
        vent_below_mmhg: a zone counts as vented below this.
    """

    def __init__(self, *, zones: list[str], heaters: int, vent_below_mmhg: float) -> None:
        self.zone_names = zones
        self.heaters = heaters
        self.vent_below = vent_below_mmhg
        self.zones = [ZoneResult(zone=name) for name in zones]
        self.heater_results = [HeaterResult(heater=h) for h in range(heaters)]
        self.problems: list[str] = []
        self.step_name = "venting"
        self.started: float | None = None
        self.finished: float | None = None
        self.aborted: str | None = None
        self._procedure = self._run()
        self._drive = next(self._procedure)

    @property
    def done(self) -> bool:
        """True once the procedure has ended (passed, failed or aborted)."""
        return self.finished is not None

    @property
    def passed(self) -> bool:
        """Done, not aborted, and no problem anywhere."""
        return (
            self.done
            and self.aborted is None
            and not self.problems
            and all(z.passed for z in self.zones)
            and all(h.passed for h in self.heater_results)
        )

    def every_problem(self) -> list[str]:
        """Every problem found, in the order of the test."""
        out = [p for z in self.zones for p in z.problems]
        out += [p for h in self.heater_results for p in h.problems]
        return out + self.problems

    def step(self, obs: Observation) -> Drive:
        """Take this tick's readings; return what the parts should do."""
        if self.started is None:
            self.started = obs.now
        if self.done:
            return Drive()
        try:
            self._drive = self._procedure.send(obs)
        except StopIteration:
            self.finished = obs.now
            self._drive = Drive()
        return self._drive

    def abort(self, now: float, reason: str) -> None:
        """End the test early (a stop, a fault); it has not passed."""
        if not self.done:
            self.aborted = reason
            self.finished = now
            self._procedure.close()

    # -- the procedure --------------------------------------------------------------------
    def _run(self) -> Generator[Drive, Observation, None]:
        obs = yield Drive()
        obs = yield from self._vent_all(obs)
        for k in range(len(self.zones)):
            obs = yield from self._zone(k, obs)
            obs = yield from self._vent_all(obs)
        for h in range(self.heaters):
            obs = yield from self._heater(h, obs)
        obs = yield from self._vibration(obs)
        yield from self._vent_all(obs)

    def _vent_all(
        self, obs: Observation, *, inlets: frozenset[int] = frozenset()
    ) -> Generator[Drive, Observation, Observation]:
        """Every exhaust open (and `inlets`, to vent a zone through the others) until vented."""
        self.step_name = "venting"
        t0 = obs.now
        while max(obs.pressures, default=0.0) >= self.vent_below:
            if obs.now - t0 > VENT_ALL_TIMEOUT_S:
                worst = max(range(len(obs.pressures)), key=lambda i: obs.pressures[i])
                self.problems.append(
                    f"{self.zone_names[worst]} still reads {obs.pressures[worst]:.1f} mmHg "
                    f"{VENT_ALL_TIMEOUT_S:.0f} s after every exhaust opened"
                )
                return obs
            obs = yield Drive(inlets=inlets)
        return (yield from self._wait(obs, SETTLE_S, Drive(inlets=inlets)))

    def _wait(
        self, obs: Observation, seconds: float, drive: Drive
    ) -> Generator[Drive, Observation, Observation]:
        t0 = obs.now
        while obs.now - t0 < seconds:
            obs = yield drive
        return obs

    def _zone(self, k: int, obs: Observation) -> Generator[Drive, Observation, Observation]:
        name = self.zone_names[k]
        result = self.zones[k]
        n = len(self.zones)
        everything = frozenset(range(n))
        base = list(obs.pressures)

        # 1. fill: only this inlet, every exhaust closed
        self.step_name = f"{name}: filling"
        fill = Drive(
            pump=PUMP_DUTY,
            inlets=frozenset({k}),
            closed_exhausts=everything,
            targets={k: FILL_TARGET_MMHG},
        )
        t0 = obs.now
        risen: int | None = None
        while risen is None:
            rises = [p - b for p, b in zip(obs.pressures, base, strict=True)]
            over = [i for i in range(n) if rises[i] >= RISE_MMHG]
            if over:
                risen = k if k in over else over[0]
                break
            if obs.now - t0 > FILL_TIMEOUT_S:
                break
            obs = yield fill
        fill_s = obs.now - t0

        if risen is None:
            return (yield from self._nothing_rose(k, obs, base))
        if risen != k:
            return (yield from self._other_rose(k, risen, obs, base))
        result.fill_s = fill_s
        result.rise_mmhg_s = (obs.pressures[k] - base[k]) / fill_s if fill_s > 0 else None
        others = [i for i in range(n) if i != k and obs.pressures[i] - base[i] >= 3.0]
        for i in others:
            result.problems.append(
                f"{name}: filling it also raised {self.zone_names[i]} by "
                f"{obs.pressures[i] - base[i]:.1f} mmHg: their air lines are joined"
            )

        # 2. hold: both valves closed; the trend from the means of its first and last half
        # second (one reading's noise is as large as the change). A leak must show in a second
        # hold too: a sensor's one-off step (a glitch, a drifting offset) looks like a leak once.
        self.step_name = f"{name}: holding"
        sealed = Drive(closed_exhausts=everything, targets={k: FILL_TARGET_MMHG})
        obs = yield from self._wait(obs, SETTLE_S, sealed)
        held = 0.0
        for _ in range(HOLDS):
            seen: list[tuple[float, float]] = []
            t_hold = obs.now
            while obs.now - t_hold < HOLD_S:
                seen.append((obs.now - t_hold, obs.pressures[k]))
                obs = yield sealed
            first = [v for t, v in seen if t < 0.5]
            last = [v for t, v in seen if t >= HOLD_S - 0.5]
            if not (first and last):
                break
            held = sum(first) / len(first)
            rate = max((held - sum(last) / len(last)) / (HOLD_S - 0.5), 0.0)
            result.leak_mmhg_s = rate
            if rate <= LEAK_FRACTION_S * held:
                break
        if result.leak_mmhg_s is not None and result.leak_mmhg_s > LEAK_FRACTION_S * held:
            result.problems.append(
                f"{name}: loses {result.leak_mmhg_s:.2f} mmHg/s at {held:.0f} mmHg with both "
                f"valves closed (over {LEAK_FRACTION_S:.0%} a second): a leak in its sleeve, "
                "tube or valves"
            )

        # 3. vent through its own exhaust only
        self.step_name = f"{name}: venting through its exhaust"
        own = Drive(closed_exhausts=everything - {k})
        t0 = obs.now
        while obs.pressures[k] >= self.vent_below and obs.now - t0 <= VENT_TIMEOUT_S:
            obs = yield own
        if obs.pressures[k] < self.vent_below:
            result.vent_s = obs.now - t0
        else:
            result.problems.append(
                f"{name}: still {obs.pressures[k]:.1f} mmHg {VENT_TIMEOUT_S:.0f} s after its "
                "exhaust opened: the exhaust is stuck closed or wired to another zone"
            )
        return obs

    def _other_rose(
        self, k: int, j: int, obs: Observation, base: list[float]
    ) -> Generator[Drive, Observation, Observation]:
        """Zone k's inlet raised sensor j: swapped sensors if k's exhaust lets it out again."""
        name, other = self.zone_names[k], self.zone_names[j]
        everything = frozenset(range(len(self.zones)))
        self.step_name = f"{name}: whose air is on {other}'s sensor?"
        obs = yield from self._wait(obs, SETTLE_S, Drive(closed_exhausts=everything))
        risen = obs.pressures[j] - base[j]
        own = Drive(closed_exhausts=everything - {k})
        t0 = obs.now
        while obs.now - t0 <= VENT_TIMEOUT_S and obs.pressures[j] - base[j] > risen / 2:
            obs = yield own
        if obs.pressures[j] - base[j] <= risen / 2:
            self.zones[k].problems.append(
                f"{name}: its air shows on {other}'s sensor, and {name}'s exhaust lets it out: "
                f"the sensor channels (or sensor tubes) of {name} and {other} are swapped"
            )
        else:
            self.zones[k].problems.append(
                f"{name}: its inlet fills {other} ({other}'s sensor rose, {name}'s exhaust does "
                f"not let that air out): the inlet tubes of {name} and {other} are swapped"
            )
        return obs

    def _nothing_rose(
        self, k: int, obs: Observation, base: list[float]
    ) -> Generator[Drive, Observation, Observation]:
        """Nothing rose while zone k filled: a blind sensor, an inverted exhaust, or no air.

        A sensor that does not see its zone: the air is there, and moves into a joined
        neighbour. An exhaust that opens when told to close: the zone fills when told to open.
        """
        name = self.zone_names[k]
        n = len(self.zones)
        everything = frozenset(range(n))
        result = self.zones[k]
        # a. did the zone hold air its sensor does not see? join it to a vented neighbour
        j = k + 1 if k + 1 < n else k - 1
        if j >= 0:
            other = self.zone_names[j]
            self.step_name = f"{name}: does it hold air its sensor misses?"
            before = obs.pressures[j]
            join = Drive(inlets=frozenset({k, j}), closed_exhausts=everything)
            obs = yield from self._wait(obs, JOIN_S, join)
            gained = obs.pressures[j] - before
            if gained >= JOIN_RISE_MMHG:
                result.problems.append(
                    f"{name}: its sensor did not move while it filled, yet joined to {other} "
                    f"it raised {other} by {gained:.1f} mmHg: {name}'s sensor channel is dead "
                    "(or its sensor tube is off)"
                )
                return obs
        # b. an inverted exhaust closes when told to open: try filling that way
        self.step_name = f"{name}: is its exhaust inverted?"
        probe = Drive(
            pump=PUMP_DUTY,
            inlets=frozenset({k}),
            closed_exhausts=everything - {k},
            targets={k: FILL_TARGET_MMHG},
        )
        t0 = obs.now
        while obs.now - t0 <= FILL_TIMEOUT_S:
            if obs.pressures[k] - base[k] >= RISE_MMHG / 2:
                result.problems.append(
                    f"{name}: fills only while its exhaust is told to open: the exhaust is "
                    "wired inverted (or is a normally-closed valve)"
                )
                # told closed, it opens: vent it that way, and through the manifold
                # (to well below the vent threshold: told to open from now on, it stays shut)
                vent = Drive(closed_exhausts=frozenset({k}), inlets=everything)
                t1 = obs.now
                while obs.now - t1 <= VENT_ALL_TIMEOUT_S and (
                    obs.pressures[k] >= self.vent_below / 2 or obs.now - t1 < SETTLE_S
                ):
                    obs = yield vent
                return obs
            obs = yield probe
        result.problems.append(
            f"{name}: took no air in {FILL_TIMEOUT_S:.0f} s of pumping (no sensor rose, with "
            "its exhaust told to close or to open, and it held none to give a neighbour): a hose "
            "off, a sleeve open, its inlet not opening, or the pump not running"
        )
        return obs

    def _heater(self, h: int, obs: Observation) -> Generator[Drive, Observation, Observation]:
        result = self.heater_results[h]
        self.step_name = f"heater {h}: warming"
        start = list(obs.temperatures)
        if not all(math.isfinite(t) for t in start):
            result.problems.append(f"heater {h}: a heater sensor has no reading")
            return obs
        on = Drive(heaters=frozenset({h}), heater_supply=True)
        t0 = obs.now
        while obs.now - t0 <= HEAT_TIMEOUT_S:
            rises = [t - s for t, s in zip(obs.temperatures, start, strict=True)]
            if rises[h] >= HEAT_RISE_C or max(obs.temperatures) >= HEAT_MAX_C:
                break
            others = [i for i, r in enumerate(rises) if i != h and r >= HEAT_RISE_C]
            if others:
                result.problems.append(
                    f"heater {h}: switching it on warmed heater {others[0]}'s sensor instead: "
                    "the heater switches or the sensors are swapped"
                )
                return (yield from self._cool(obs))
            obs = yield on
        elapsed = obs.now - t0
        rise = obs.temperatures[h] - start[h]
        result.rise_c_s = rise / elapsed if elapsed > 0 else None
        if rise < HEAT_RISE_C:
            result.problems.append(
                f"heater {h}: warmed {rise:.1f} °C in {elapsed:.0f} s: the pad does not heat, "
                "or its sensor is not under it"
            )
            return (yield from self._cool(obs))
        rate = result.rise_c_s or 0.0
        if not HEAT_MIN_RATE_C_S <= rate <= HEAT_MAX_RATE_C_S:
            result.problems.append(
                f"heater {h}: warms at {rate:.2f} °C/s, outside {HEAT_MIN_RATE_C_S}-"
                f"{HEAT_MAX_RATE_C_S} °C/s: check the pad's power and where its sensor sits"
            )
        # the supply switch alone must stop the heating (the pad's own switch stays on)
        self.step_name = f"heater {h}: supply switch off"
        cut = Drive(heaters=frozenset({h}), heater_supply=False)
        obs = yield from self._wait(obs, CUT_S / 2, cut)  # the pad's own heat spreads first
        # then the trend, from the means of its first and its last second (the sensor's noise
        # is as large as a second's change)
        seen: list[tuple[float, float]] = []
        t1 = obs.now
        while obs.now - t1 < CUT_S / 2:
            seen.append((obs.now - t1, obs.temperatures[h]))
            obs = yield cut
        first = [v for t, v in seen if t < 1.0]
        last = [v for t, v in seen if t >= CUT_S / 2 - 1.0]
        span = CUT_S / 2 - 1.0
        still = (sum(last) / len(last) - sum(first) / len(first)) / span if first and last else 0.0
        result.cut = still <= rate / 4
        if not result.cut:
            result.problems.append(
                f"heater {h}: still warming at {still:.2f} °C/s with the supply switch off: "
                "the supply switch does not cut the heaters"
            )
        return obs

    def _cool(self, obs: Observation) -> Generator[Drive, Observation, Observation]:
        return (yield from self._wait(obs, SETTLE_S, Drive()))

    def _vibration(self, obs: Observation) -> Generator[Drive, Observation, Observation]:
        self.step_name = "vibration"
        obs = yield from self._wait(obs, VIBRATION_S, Drive(vibration=0.5))
        return (yield from self._wait(obs, SETTLE_S, Drive()))

    # -- the report -----------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The result as plain data (strict JSON): what the state directory and MQTT keep."""
        duration = None
        if self.started is not None and self.finished is not None:
            duration = round(self.finished - self.started, 1)
        result = "running"
        if self.done:
            result = "passed" if self.passed else ("aborted" if self.aborted else "failed")
        return {
            "result": result,
            "step": None if self.done else self.step_name,
            "duration_s": duration,
            "aborted": self.aborted,
            "problems": self.every_problem(),
            "zones": {z.zone: z.as_dict() for z in self.zones},
            "heaters": {str(h.heater): h.as_dict() for h in self.heater_results},
            "vibration": "switched on and off (no sensor confirms it)",
        }
