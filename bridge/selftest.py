"""`legwave selftest`: the commissioning self-test on the configured hardware, from a terminal.

It runs the device's own self-test (the one the MQTT command and the Home Assistant button start)
without an agent: on the simulator in virtual time, on a Pi in real time with the sensors zeroed
first. The report is printed and kept in the state directory, where the agent finds it: on a Pi
no session starts until a self-test has passed on the current wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge.codec import pretty_json
from bridge.service import refuse_unscaled, wiring_fingerprint
from device.backends import Simulated
from device.calibration import Calibration, calibrated
from device.control.massager import Action, Command, Massager, Status
from device.runner import MonotonicClock, Runner, VirtualClock
from device.store import (
    Memory,
    StateDirectoryInUseError,
    Store,
    claim,
    load_calibration,
    restore,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bridge.calibrate import Bench
    from bridge.config import AgentSettings
    from device.backends import Backend
    from device.backends.sim import FaultInjection
    from device.hal import Clock, Hardware


@contextlib.contextmanager
def open_bench(
    settings: AgentSettings, *, faults: list[FaultInjection], seed: int, zero: bool
) -> Iterator[tuple[Bench, Callable[[], list[tuple[float | None, str]]], str]]:
    """The configured hardware for a calibration: its bench, its raw reader, its sensor's name.

    On the simulator the bench moves a virtual clock and has a gauge (the true pressure of the
    zone being filled); on a Pi it runs in real time, zeroed first when `zero`, and a person is
    the gauge.
    """
    from bridge.calibrate import PERIOD_S, Bench
    from device.backends.pi.config import Ads1115Pressure
    from device.backends.pi.transfer import MMHG_PER_KPA

    if settings.backend == "sim":
        clock = VirtualClock()
        simulated = Simulated(device=settings.device, clock=clock.now, faults=faults, seed=seed)
        sim = simulated.sim

        def tick() -> float:
            clock.t += PERIOD_S
            return clock.t

        def gauge(k: int) -> float:
            return sim.physics.zones[sim.inlet_feeds[k]].pressure

        bench = Bench(sim.hardware, tick=tick, gauge=gauge, heaters=settings.device.heaters)
        sensor = Ads1115Pressure().sensor  # the simulator's sensors are the reference ones

        def raw() -> list[tuple[float | None, str]]:
            return [
                (sensor.divider * sensor.supply_v * (0.018 * v / MMHG_PER_KPA + 0.04), "V")
                for v in bench.readings()
            ]

        try:
            yield bench, raw, "MPX5050"
        finally:
            simulated.close()
        return
    from device.backends import open_backend
    from device.backends.pi import PiHardware

    backend = open_backend(
        settings.backend,
        device=settings.device,
        clock=time.monotonic,
        pi=settings.pi,
        raw_counts=True,  # an HX710B is calibrated in its own counts
    )
    assert isinstance(backend, PiHardware)  # noqa: S101 - every other backend is a Pi's
    try:
        ads = isinstance(settings.pi.pressure, Ads1115Pressure)
        if zero or ads:
            backend.start()

        def real_tick() -> float:
            time.sleep(PERIOD_S)
            return time.monotonic()

        bench = Bench(backend.hardware, tick=real_tick, gauge=None, heaters=settings.device.heaters)
        yield bench, backend.raw_pressure, "MPX5050" if ads else "HX710B board"
    finally:
        backend.close()


def run_selftest(
    settings: AgentSettings,
    *,
    faults: list[FaultInjection] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the self-test on the configured backend; keep and return its record.

    Raises:
        StateDirectoryInUseError: an agent runs on this state directory (send it the command).
        device.backends.HardwareUnavailableError: the backend cannot open here.
    """
    lock = claim(settings.state_dir)
    try:
        backend: Backend
        clock: Clock
        if settings.backend == "sim":  # in virtual time: the self-test takes half a second
            clock = VirtualClock()
            backend = Simulated(
                device=settings.device, clock=clock.now, faults=faults or [], seed=seed
            )
        else:
            from device.backends import open_backend

            clock = MonotonicClock()
            backend = open_backend(
                settings.backend,
                device=settings.device,
                clock=clock.now,
                pi=settings.pi,
                counts_per_mmhg=load_calibration(settings.state_dir).counts(settings.device.zones),
            )
        try:
            refuse_unscaled(backend, settings)
            backend.start()  # a Pi zeroes its sensors with the sleeves vented
            calibration = load_calibration(settings.state_dir)
            hardware = calibrated(backend.hardware, calibration.gains(settings.device.zones))
            return asyncio.run(
                _run(settings, hardware, clock, calibration=calibration, progress=progress)
            )
        finally:
            backend.close()
    finally:
        lock.close()


async def _run(
    settings: AgentSettings,
    hardware: Hardware,
    clock: Clock,
    *,
    calibration: Calibration,
    progress: bool,
) -> dict[str, Any]:
    t0 = clock.now()
    wall0 = datetime.now(UTC)
    massager = Massager(
        device=settings.device,
        wall=lambda t: wall0 + timedelta(seconds=t - t0),
        new_id=lambda: str(uuid.uuid4()),
    )
    massager.wiring = wiring_fingerprint(settings, calibration)
    store = Store(settings.state_dir)
    restore(massager, store.load(), now=t0)
    runner = Runner(massager=massager, hardware=hardware, clock=clock)
    done = asyncio.Event()
    shown: list[str] = []

    def on_tick(now: float) -> None:
        test = massager.selftest
        if progress and test is not None and test.step_name not in shown[-1:]:
            shown.append(test.step_name)
            print(f"  … {test.step_name}", file=sys.stderr, flush=True)
        if massager.status in (Status.IDLE, Status.FAULT):
            done.set()  # the self-test is over and the sleeves are vented (or a fault holds)

    runner.tick(clock.now())  # the sensors and the supervisor are primed
    runner.submit(Command(action=Action.SELFTEST))
    runner.on_tick = on_tick
    await runner.run(stop=done)
    massager.drain_events()
    store.save(Memory.of(massager))
    record = massager.selftest_record
    assert record is not None  # noqa: S101 - the test ran to an end above
    return record


def format_report(record: dict[str, Any], *, backend: str) -> str:
    """The report as a table for a terminal."""
    result = record["result"]
    lines = [f"legwave self-test ({backend} backend): {result} in {record['duration_s']} s"]
    lines.append(f"  {'zone':<12} {'fill':>7} {'rise':>12} {'leak':>13} {'vent':>7}  result")
    for name, z in record["zones"].items():
        lines.append(
            f"  {name:<12} {_num(z['fill_s'], 's'):>7} {_num(z['rise_mmhg_s'], 'mmHg/s'):>12} "
            f"{_num(z['leak_mmhg_s'], 'mmHg/s'):>13} {_num(z['vent_s'], 's'):>7}  "
            f"{'ok' if z['passed'] else 'PROBLEM'}"
        )
    for h, r in record["heaters"].items():
        warms = "-" if r["rise_c_s"] is None else f"warms {r['rise_c_s']:.3f} °C/s"
        cut = ", the supply switch cuts it" if r["supply_cuts_it"] else ""
        lines.append(f"  heater {h:<5} {warms}{cut}  {'ok' if r['passed'] else 'PROBLEM'}")
    lines.append(f"  vibration    {record['vibration']}")
    if record.get("aborted"):
        lines.append(f"  aborted: {record['aborted']}")
    if record["problems"]:
        lines.append("problems:")
        lines += [f"  - {p}" for p in record["problems"]]
    return "\n".join(lines)


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {unit}" if unit != "s" else f"{value:.1f} {unit}"


def selftest_command(
    settings: AgentSettings,
    *,
    fault_specs: list[str],
    seed: int,
    as_json: bool,
) -> int:
    """The `legwave selftest` command: 0 when it passed, 1 when not, 2 when it could not run."""
    from device.backends import HardwareUnavailableError
    from device.backends.sim import FaultInjection, FaultSpecError

    if fault_specs and settings.backend != "sim":
        print("legwave: error: --fault: faults are the simulator's only", file=sys.stderr)
        return 2
    try:
        faults = [
            FaultInjection.parse(spec, zones=settings.device.zones, default_at_s=0.0)
            for spec in fault_specs
        ]
    except FaultSpecError as exc:
        print(f"legwave: error: {exc}", file=sys.stderr)
        return 2
    try:
        record = run_selftest(settings, faults=faults, seed=seed, progress=not as_json)
    except StateDirectoryInUseError as exc:
        print(
            f"legwave: error: {exc}. The agent runs the self-test itself: "
            "legwave ctl selftest (or the Self-test button in Home Assistant)",
            file=sys.stderr,
        )
        return 2
    except HardwareUnavailableError as exc:
        print(f"legwave: error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(pretty_json(record))
    else:
        print(format_report(record, backend=settings.backend))
        print(f"kept in {settings.state_dir / 'memory.json'}")
    return 0 if record["result"] == "passed" else 1
