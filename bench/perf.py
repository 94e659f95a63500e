"""legwave's performance, measured the way users feel it, each figure beside its baseline.

Run: bench/run [--loop-minutes 10] [--fleet 100] [--samples 300] [--quick]. Every row is measured
in this one run on this machine, against a loopback mosquitto started for it; the table is
printed and written with two plots into docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt

from bench import peer
from bench.peer import cpu_s, pct, rss_mb
from bench.valves import time_exhaust_orders
from bridge.broker import Mosquitto
from bridge.config import load_settings
from bridge.service import build, serving
from bridge.transport import NO_DELAY
from device.backends.sim import SimulatedMassager
from device.control.massager import Action, Command, Massager
from device.runner import VirtualClock
from device.settings import DeviceSettings, SessionSettings, SettingChanges
from device.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
CHILDREN = Path(__file__).resolve().parent / "children"
DOC = ROOT / "docs" / "performance.md"
IMG = ROOT / "docs" / "img"
BASE = "legwave/benchdev"
PERIOD_MS = 20.0
PI4_NBODY_5M_S = 158.26  # Python, Raspberry Pi 4 (1.5 GHz, performance governor): see the doc
# Single-thread speed of a Cortex-A53 at 1.0 GHz (Zero 2 W) against a Cortex-A72 at 1.5 GHz
# (Pi 4), from Arm's published DMIPS/MHz (2.3 and 4.7).
ZERO2_PER_PI4 = (2.3 * 1000) / (4.7 * 1500)


@dataclass
class Row:
    """One line of the table."""

    what: str
    target: str
    measured: str
    baseline: str
    met: bool | None


def cli(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A `legwave` process."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", *args], env=env, stderr=out, stdout=out
        )


class Figures:
    """Everything measured, for the table and the plots."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.echo_ms: list[float] = []
        self.command_ms: list[float] = []
        self.stop_ms: list[float] = []
        self.lateness_flood: list[float] = []
        self.lateness_quiet: list[float] = []
        self.notes: list[str] = []
        self.tick_us = 0.0
        self.nbody_s = 0.0
        self.peer = peer.Peer()


async def _wait(client: aiomqtt.Client, match: Callable[[str, bytes], bool], within: float) -> None:
    async with asyncio.timeout(within):
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else b""
            if match(m.topic.value, payload):
                return


def _echo_of(token: bytes) -> Callable[[str, bytes], bool]:
    def match(topic: str, payload: bytes) -> bool:
        return topic == "bench/echo/out" and payload == token

    return match


def _state_with(level: int) -> Callable[[str, bytes], bool]:
    def match(topic: str, payload: bytes) -> bool:
        return topic.endswith("/state") and json.loads(payload).get("intensity") == level

    return match


async def latency_and_footprint(fig: Figures, broker: Mosquitto, samples: int, work: Path) -> None:
    """Echo round trip vs command → state; start → online; memory and CPU."""
    env = {
        **os.environ,
        "LEGWAVE_DEVICE_ID": "benchdev",
        "LEGWAVE_STATE_DIR": str(work / "state"),
        "LEGWAVE_MQTT__HOST": "127.0.0.1",
        "LEGWAVE_MQTT__PORT": str(broker.port),
        "LEGWAVE_TELEMETRY_HZ": "5",
    }
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import aiomqtt, pydantic"], check=True)
    import_s = time.perf_counter() - t0
    echo = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
        [sys.executable, str(CHILDREN / "echo.py"), str(broker.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert echo.stdout is not None
    echo.stdout.readline()
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, socket_options=NO_DELAY) as client:
            for topic in (f"{BASE}/availability", f"{BASE}/state", "bench/echo/out"):
                await client.subscribe(topic, qos=1)
            started = time.perf_counter()
            agent = cli("run", env=env, log=work / "agent.log")
            try:
                await _wait(client, lambda t, p: t.endswith("/availability") and p == b"online", 30)
                online_s = time.perf_counter() - started
                await asyncio.sleep(1.0)
                for i in range(samples):  # side by side: echo, then a command, each round
                    await asyncio.sleep(0.06)  # under the agent's 20 commands/s flood limit
                    sent = time.perf_counter()
                    await client.publish("bench/echo/in", str(i).encode(), qos=1)
                    await _wait(client, _echo_of(str(i).encode()), 5)
                    fig.echo_ms.append(1000 * (time.perf_counter() - sent))
                    level = 1 + i % 7
                    sent = time.perf_counter()
                    await client.publish(f"{BASE}/set", json.dumps({"intensity": level}), qos=1)
                    await _wait(client, _state_with(level), 5)
                    fig.command_ms.append(1000 * (time.perf_counter() - sent))
                await asyncio.sleep(5.0)
                rss_idle = rss_mb(agent.pid)
                c0, w0 = cpu_s(agent.pid), time.monotonic()
                await asyncio.sleep(20.0)
                cpu_idle = 100 * (cpu_s(agent.pid) - c0) / (time.monotonic() - w0)
                await client.publish(
                    f"{BASE}/set", b'{"action": "start", "duration_min": 10}', qos=1
                )
                await asyncio.sleep(5.0)
                c0, w0 = cpu_s(agent.pid), time.monotonic()
                await asyncio.sleep(20.0)
                cpu_running = 100 * (cpu_s(agent.pid) - c0) / (time.monotonic() - w0)
                rss_running = rss_mb(agent.pid)
            finally:
                agent.terminate()
                agent.wait(timeout=15)
    finally:
        echo.terminate()
        echo.wait(timeout=5)

    e50, e99 = pct(fig.echo_ms, 0.5), pct(fig.echo_ms, 0.99)
    c50, c99 = pct(fig.command_ms, 0.5), pct(fig.command_ms, 0.99)
    fig.rows.append(
        Row(
            "command → applied (state shows it), p50 / p99",
            f"≤ {e50 + PERIOD_MS:.1f} / {e99 + 2 * PERIOD_MS:.1f} ms",
            f"{c50:.2f} / {c99:.2f} ms",
            f"echo round trip {e50:.2f} / {e99:.2f} ms",
            c50 <= e50 + PERIOD_MS and c99 <= e99 + 2 * PERIOD_MS,
        )
    )
    fig.rows.append(
        Row(
            "agent start → discovery and `online` published",
            "≤ 1.5 s",
            f"{online_s:.2f} s",
            f"`import aiomqtt, pydantic`: {import_s:.2f} s",
            online_s <= 1.5,
        )
    )
    fig.rows.append(
        Row(
            "agent memory (RSS), idle / running",
            "≤ 60 MB",
            f"{rss_idle:.0f} / {rss_running:.0f} MB",
            "—",
            max(rss_idle, rss_running) <= 60,
        )
    )
    fig.rows.append(
        Row(
            "agent CPU, idle / running with 5 Hz telemetry",
            "≤ 3 % / ≤ 8 % of one core",
            f"{cpu_idle:.1f} / {cpu_running:.1f} %",
            "—",
            cpu_idle <= 3 and cpu_running <= 8,
        )
    )


async def stop_to_valves(fig: Figures, broker: Mosquitto, samples: int, work: Path) -> None:
    """`stop` published by another process → the first exhaust valve told to open."""
    settings = load_settings(
        None,
        device_id="benchstop",
        state_dir=work / "state-stop",
        mqtt={"host": "127.0.0.1", "port": broker.port},
    )
    async with serving(settings, host="127.0.0.1", port=broker.port) as agent:
        opened = time_exhaust_orders(agent)
        await asyncio.wait_for(agent.connected.wait(), 15)
        pub = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILDREN / "publisher.py"),
            str(broker.port),
            agent.topics.set,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert pub.stdin is not None and pub.stdout is not None
        await pub.stdout.readline()
        try:
            for _ in range(samples):
                pub.stdin.write(b"start\n")
                await pub.stdout.readline()
                while agent.massager.status.value not in ("fit_check", "running"):
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.3)  # zone 1 filling, its exhaust closed
                before = len(opened)
                pub.stdin.write(b"stop\n")
                sent = float(await pub.stdout.readline())
                while len(opened) == before:
                    await asyncio.sleep(0.001)
                fig.stop_ms.append(1000 * (opened[before] - sent))
                await asyncio.sleep(0.2)
        finally:
            pub.stdin.close()
            await pub.wait()
    e99 = pct(fig.echo_ms, 0.99)
    s50, s99 = pct(fig.stop_ms, 0.5), pct(fig.stop_ms, 0.99)
    fig.rows.append(
        Row(
            "`stop` → valves open, p99",
            f"≤ {e99 + 2:.1f} ms",
            f"{s99:.2f} ms (p50 {s50:.2f})",
            f"echo round trip p99 {e99:.2f} ms",
            s99 <= e99 + 2,
        )
    )


async def loop_under_flood(fig: Figures, broker: Mosquitto, minutes: float, work: Path) -> None:
    """Tick lateness at 50 Hz under a 500/s command flood and 5 Hz telemetry, and without."""
    seconds = minutes * 60.0
    settings = load_settings(
        None,
        device_id="benchloop",
        state_dir=work / "state-loop",
        telemetry_hz=5,
        mqtt={"host": "127.0.0.1", "port": broker.port},
    )
    agent = build(settings, host="127.0.0.1", port=broker.port)
    gc.freeze()  # as `legwave run` does once it has started
    stop = asyncio.Event()
    agent.runner.lateness = fig.lateness_flood
    tasks = [
        asyncio.create_task(agent.runner.run(stop=stop)),
        asyncio.create_task(agent.run(stop)),
    ]
    await asyncio.wait_for(agent.connected.wait(), 15)
    agent.runner.submit(Command(action=Action.START, changes=SettingChanges(duration_min=60)))
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILDREN / "paced_flood.py"), str(broker.port), "500", str(seconds)
    )
    agent_log = logging.getLogger("bridge.agent")
    agent_log.setLevel(logging.ERROR)  # the flood's refusals, summarised every 10 s, unread here
    try:
        await flooder.wait()
    finally:
        agent_log.setLevel(logging.NOTSET)
    flood_overruns = agent.runner.overruns
    stop.set()
    await asyncio.gather(*tasks)
    agent.close()

    quiet = build(settings, host="127.0.0.1", port=1)  # no broker: the loop alone
    quiet.runner.on_tick = None
    gc.freeze()
    quiet.runner.lateness = fig.lateness_quiet
    quiet.runner.submit(Command(action=Action.START, changes=SettingChanges(duration_min=60)))
    stop = asyncio.Event()
    runner_task = asyncio.create_task(quiet.runner.run(stop=stop))
    await asyncio.sleep(seconds)
    stop.set()
    await runner_task

    def stats(values: list[float]) -> tuple[float, float, float]:
        ms = [1000 * v for v in values]
        return pct(ms, 0.5), pct(ms, 0.99), max(ms)

    f50, f99, fmax = stats(fig.lateness_flood)
    _, q99, qmax = stats(fig.lateness_quiet)
    fig.rows.append(
        Row(
            f"control loop at 50 Hz for {minutes:g} min under a 500/s command flood and "
            "5 Hz telemetry: tick lateness p99 / max, missed periods",
            "≤ 2 ms / ≤ 10 ms, none",
            f"{f99:.2f} / {fmax:.2f} ms, {flood_overruns} (p50 {f50:.2f} ms, "
            f"{len(fig.lateness_flood)} ticks)",
            f"loop alone: {q99:.2f} / {qmax:.2f} ms, {quiet.runner.overruns}",
            f99 <= 2 and fmax <= 10 and flood_overruns == 0,
        )
    )


def tick_breakdown(ticks: int = 30_000) -> dict[str, float]:
    """Microseconds per simulated tick, by part: what a faster simulation would have to cut."""
    device = DeviceSettings()
    clock = VirtualClock()
    sim = SimulatedMassager(zones=len(device.zones), heaters=device.heaters, clock=clock.now)
    massager = Massager(
        device=device,
        settings=SessionSettings(duration_min=60),
        wall=lambda t: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=t),
        new_id=lambda: "bench",
    )
    hw = sim.hardware
    check = massager.supervisor.check
    supervisor = 0.0

    def timed_check(*args: Any) -> Any:
        nonlocal supervisor
        t = time.perf_counter()
        try:
            return check(*args)
        finally:
            supervisor += time.perf_counter() - t

    massager.supervisor.check = timed_check  # type: ignore[method-assign, assignment]
    massager.step(0.0, hw.read())
    massager.submit(Command(action=Action.START), 0.0)
    read = step = apply = 0.0
    clock_ = time.perf_counter
    for k in range(1, ticks + 1):
        clock.t = now = k * device.period_s
        a = clock_()
        readings = hw.read()
        b = clock_()
        orders = massager.step(now, readings)
        c = clock_()
        hw.apply(orders)
        d = clock_()
        read, step, apply = read + b - a, step + c - b, apply + d - c
    us = 1e6 / ticks
    return {
        "sensors and physics": read * us,
        "pattern, regulator, heat and state machine": (step - supervisor) * us,
        "safety supervisor": supervisor * us,
        "actuators": apply * us,
    }


def simulation_speed(fig: Figures) -> None:
    """An hour of session in virtual time; the cost of one tick, and of its parts."""
    t0 = time.perf_counter()
    report = simulate(SessionSettings(duration_min=60), seed=0)
    wall = time.perf_counter() - t0
    fig.tick_us = 1e6 * wall / report.ticks
    ratio = 3600.0 / wall
    parts = tick_breakdown()
    compiled = compiled_speed()
    budget = 1e6 / (2000 * 50)
    rules = 4 * 11 + 2 * 4  # per tick: 11 checks on each of 4 zones, 4 on each of 2 heaters
    split = ", ".join(f"{name} {us:.1f} µs" for name, us in parts.items())
    sup = parts["safety supervisor"]
    logic = sup + parts["pattern, regulator, heat and state machine"]
    fig.notes.append(
        f"Simulated session: {fig.tick_us:.0f} µs per tick here, {report.ticks} ticks for the "
        f"hour. By part (timed inside the tick, same run): {split}. 2,000× real time leaves "
        f"{budget:.0f} µs per 20 ms tick for all of it. The safety supervisor alone takes "
        f"{sup:.1f} µs: about {rules} rule evaluations per tick ({1000 * sup / rules:.0f} ns "
        "each, the cost of a few attribute reads and comparisons in CPython), and the simulator "
        "runs every one of them, as the device does. The device's own logic (control and "
        f"supervisor, {logic:.1f} µs) is over the budget before any simulation. No part is a "
        "hot spot to fix: each is a few microseconds of plain interpreted Python, and all of "
        f"them together would have to become {fig.tick_us / budget:.1f}× faster."
    )
    measured = f"{ratio:.0f}× ({wall:.1f} s; {fig.tick_us:.0f} µs per 20 ms tick)"
    if compiled is None:
        fig.notes.append("Compiled simulation: not measured (needs mypyc and a C compiler).")
    else:
        c_wall, build_s = compiled
        c_tick = 1e6 * c_wall / report.ticks
        measured += f"; compiled with mypyc: {3600 / c_wall:.0f}× ({c_tick:.0f} µs)"
        fig.notes.append(
            "Compiled simulation: the same hour with the tick's modules compiled by mypyc (an "
            f"experiment of this benchmark, built in {build_s:.0f} s; legwave ships as plain "
            f"Python) takes {c_wall:.2f} s, {3600 / c_wall:.0f}× real time, {c_tick:.1f} µs per "
            f"tick: {fig.tick_us / c_tick:.1f}× faster"
            f"{', still short of 2,000×' if 3600 / c_wall < 2000 else ''}. Shipping compiled "
            "code would put a C compiler and minutes of build into every install on a Pi, for a "
            "command that is already fast enough to preview a session; the device needs "
            "nothing of it (see the Pi projection). So this target stays missed."
        )
    fig.rows.append(
        Row(
            "simulated session in virtual time (60 min)",
            "≥ 2,000× real time (under 1.8 s)",
            measured,
            "—",
            ratio >= 2000,
        )
    )


# The simulated tick's modules, all of them plain Python that mypyc compiles as they are.
COMPILED = [
    "device/hal/hardware.py",
    "device/control/faults.py",
    "device/control/heating.py",
    "device/control/setpoints.py",
    "device/control/patterns.py",
    "device/control/regulator.py",
    "device/control/supervisor.py",
    "device/control/massager.py",
    "device/backends/sim/physics.py",
    "device/backends/sim/__init__.py",
    "device/runner.py",
    "device/simulate.py",
]
MYPYC_INI = """[mypy]
strict = True
plugins = pydantic.mypy
"""


def compiled_speed() -> tuple[float, float] | None:
    """The same hour simulated with the tick's modules compiled by mypyc: (wall s, build s).

    An experiment, not how legwave ships: None when mypyc or a C compiler is missing.
    """
    if shutil.which("cc") is None or importlib.util.find_spec("mypyc") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="legwave-mypyc-") as tmp:
        shutil.copytree(ROOT / "device", Path(tmp) / "device")
        (Path(tmp) / "mypy.ini").write_text(MYPYC_INI)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mypyc", *COMPILED], cwd=tmp, check=True, capture_output=True
        )
        build_s = time.perf_counter() - t0
        env = {**os.environ, "PYTHONPATH": tmp}
        out = subprocess.run(
            [sys.executable, str(CHILDREN / "time_simulate.py")],
            cwd=tmp,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        wall, _, reason = out.stdout.split()
        assert reason == "completed", out.stdout
        return float(wall), build_s


async def fleet(
    fig: Figures,
    broker: Mosquitto,
    devices: int,
    seconds: float,
    work: Path,
    *,
    processes: int = 1,
    running: int | None = None,
) -> None:
    """`devices` agents over `processes` (`running` of them in a session at 50 Hz, the rest idle).

    An HA-like subscriber, subscribed before any device connects, counts every state.
    """
    running = devices if running is None else running
    ha = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILDREN / "ha_like.py"),
        str(broker.port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert ha.stdout is not None and ha.stdin is not None
    await ha.stdout.readline()
    children = []
    folder = work / f"fleet-of-{devices}"  # each fleet's devices start with no memory
    for p in range(processes):
        first, count = p * devices // processes, (p + 1) * devices // processes
        share = (p + 1) * running // processes - p * running // processes
        children.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(CHILDREN / "fleet.py"),
                *map(str, (broker.port, first, count - first, share, seconds, folder)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        )
    for child in children:
        assert child.stdout is not None
        ready = await child.stdout.readline()
        assert ready == b"ready\n", f"a fleet process did not start: {ready!r}"
    started = time.monotonic()
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    reports = []
    for child in children:
        assert child.stdout is not None
        reports.append(json.loads(await child.stdout.readline()))
    out, _ = await ha.communicate(b"done\n")
    for child in children:
        await child.wait()
    received = json.loads(out.decode().strip().splitlines()[-1])
    published = {t: n for r in reports for t, n in r["published"].items()}
    ticks = sum(r["ticks"] for r in reports)
    late = sum(r["late"] for r in reports)
    worst = max(r["worst_s"] for r in reports)
    cpu = sum(r["cpu_s"] for r in reports)
    faulted = sum(r["faulted"] for r in reports)
    in_session = sum(r["in_session"] for r in reports)
    per_tick_us = 1e6 * cpu / max(ticks, 1)
    where = "one process" if processes == 1 else f"{processes} processes"
    mix = (
        "50 Hz each"
        if running == devices
        else f"{running} in a session at 50 Hz, the rest idle at 10 Hz"
    )
    fig.notes.append(
        f"Fleet of {devices} ({mix}, {where}): {per_tick_us:.0f} µs of CPU per device tick "
        f"(control, simulator, agent, MQTT), {100 * cpu / seconds:.0f} % of one core in all; "
        f"{in_session} devices in a session at the end, {faulted} latched a fault."
        + (
            f" One Python process uses one core, so it holds about {20_000 / per_tick_us:.0f} "
            "devices at 50 Hz here."
            if running == devices
            else ""
        )
    )
    missing = sum(max(0, n - received.get(t, 0)) for t, n in published.items())
    sent = sum(published.values())
    fig.rows.append(
        Row(
            f"fleet: {devices} simulated devices in {where}, {mix}; 1 Hz state in a session; "
            f"{seconds:g} s",
            "no missed deadline; every state received",
            f"{late} late ticks of {ticks}, worst {1000 * worst:.0f} ms; {sent - missing} of "
            f"{sent} states received",
            f"{time.monotonic() - started:.0f} s",
            late == 0 and missing == 0,
        )
    )


def gc_pause(fig: Figures) -> None:
    """A full collection in a started agent, before and after start-up is frozen.

    Run after `projection()`: the Pi figure uses its speed ratio.
    """
    out = subprocess.run(
        [sys.executable, str(CHILDREN / "gc_pause.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    before, after, frozen = out.stdout.split()
    zero2_ms = float(before) * PI4_NBODY_5M_S / fig.nbody_s / ZERO2_PER_PI4
    fig.notes.append(
        f"Garbage collection: a full collection in a freshly started agent walks {frozen} objects "
        f"and pauses everything for {float(before):.2f} ms here, about {zero2_ms:.0f} ms on a "
        f"Pi Zero 2 W ({zero2_ms / PERIOD_MS:.0f} control periods); `legwave run` freezes what "
        f"start-up built, after which a full collection takes {float(after):.3f} ms."
    )


def projection(fig: Figures, steps: int) -> None:
    """The n-body benchmark here, scaled to the 5 million steps of the Pi 4 figure."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("nbody.py")), str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    fig.nbody_s = float(out.stdout) * 5_000_000 / steps


def projections_table(fig: Figures) -> list[str]:
    """What the measured figures become on a Pi 4 and a Pi Zero 2 W."""
    pi4 = PI4_NBODY_5M_S / fig.nbody_s
    zero2 = pi4 / ZERO2_PER_PI4
    tick = fig.tick_us
    lines = [
        "| board | Python speed vs this machine | one control tick (simulator included) | "
        "share of the 20 ms period | an hour simulated |",
        "|---|---|---|---|---|",
    ]
    for name, factor in (("this machine", 1.0), ("Raspberry Pi 4", pi4), ("Pi Zero 2 W", zero2)):
        us = tick * factor
        lines.append(
            f"| {name} | {1 / factor:.2f}× | {us:.0f} µs | {100 * us / 20000:.1f} % | "
            f"{us * 180_000 / 1e6:.0f} s |"
        )
    return lines


def write_doc(fig: Figures, args: argparse.Namespace, plots: list[str]) -> None:
    """docs/performance.md from the figures."""
    table = [
        "| what | target | measured | baseline, same run | met |",
        "|---|---|---|---|---|",
    ]
    for r in fig.rows:
        mark = "yes" if r.met else ("no" if r.met is False else "—")
        table.append(f"| {r.what} | {r.target} | {r.measured} | {r.baseline} | {mark} |")
    text = TEMPLATE.format(
        date=time.strftime("%Y-%m-%d"),
        machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        command=" ".join(["bench/run", *args.argv]) or "bench/run",
        table="\n".join(table),
        nbody=f"{fig.nbody_s:.1f}",
        pi4=f"{PI4_NBODY_5M_S / fig.nbody_s:.2f}",
        zero2=f"{1 / ZERO2_PER_PI4:.2f}",
        projections="\n".join(projections_table(fig)),
        plots="\n\n".join(plots),
        notes="\n".join(f"- {n}" for n in fig.notes) or "- none",
        fixed="\n".join(
            [
                "| what | cause, and how it was found | fix | before | after |",
                "|---|---|---|---|---|",
                *(f"| {' | '.join(row)} |" for row in FIXED),
            ]
        ),
    )
    DOC.write_text(text)


# What the table once missed, and what fixed it: (what, cause and how it was found, fix, before,
# after), measured on this machine before and after each change (bench/run peer for the first
# two: 150 interleaved samples, the version before and after in turn, 2026-12-01).
FIXED = [
    (
        "setting / start / stop → state, p50 against the echo's",
        "the sender published one QoS 1 message at a time and awaited each acknowledgement: "
        "the answer, then the event, then the state, so the state a person waits for came "
        "three round trips late",
        "pipelined publishes (up to 20 in flight, in order); a command's state leads its "
        "answer and events, and keeps the lead when the loop ticks before the send",
        "2.44× / 2.81× / 2.85× the echo",
        "see the table (1.87× / 2.54× / 1.66× before the state kept its lead)",
    ),
    (
        "setting / start / stop → state, p50 against the echo's (second pass)",
        "timed inside a running agent from the read of a command to the write of its state: "
        "the memory writer thread, woken on the command path, handed the interpreter back and "
        "forth with the event loop while the state was on its way (`strace -f`: futex "
        "hand-offs between the two), about half of the round trip; the answer built a second "
        "state snapshot, and a good command was read as JSON twice",
        "the change goes to the memory writer at the next tick; the answer carries the state "
        "just queued; a good command is parsed in one pass (the second only words a refusal)",
        "1.82× / 2.11× / 1.82× the echo",
        "1.41× / 1.52× / 1.15× (bench/peer.py, then the table)",
    ),
    (
        "agent CPU while idle",
        "the control loop ticked at 50 Hz with nothing to regulate",
        "an idle rate of 10 Hz while quiet, the same supervisor rules (docs/device.md)",
        "2.60 % of one core",
        "0.60 %",
    ),
    (
        "fleet of 100: CPU per device tick",
        "cProfile: `Physics._step` was 44 % of the process. The simulator integrated the physics "
        "at every part's call, about 19 steps per tick, because a real clock moves between the "
        "reads and the writes of one tick",
        "calls within 1 ms share one physics instant (`SYNC_RESOLUTION_S`)",
        "126 µs, 63 % of a core; 109 late ticks in 20 s (worst 33 ms)",
        "69 µs, 34 % of a core; 9 late ticks (worst 21 ms)",
    ),
    (
        "fleet of 100: the late ticks left",
        "they clustered where the devices changed state together; with the memory writes "
        "switched off none were left (worst lateness 9 ms): a hundred writer threads, one per "
        "device, contended with the control loops for the interpreter",
        "one memory writer thread per process, shared by every device",
        "9 to 100 late ticks per run (worst 21 to 29 ms)",
        "none in 60 s (300,000 ticks; worst lateness 16 ms)",
    ),
    (
        "pauses of the control loop",
        "`gc.callbacks` and timed `gc.collect()`: a full collection in a started agent pauses "
        "it for about 4 ms here, over 100 ms projected on a Pi Zero 2 W (see the notes)",
        "`legwave run` freezes what start-up built (`gc.freeze()`)",
        "4.31 ms per full collection",
        "under 0.01 ms",
    ),
    (
        "`legwave health`, CPU per call",
        "`-X importtime`: the healthcheck loaded the whole configuration (pydantic-settings and "
        "the settings models) and an MQTT client to read one retained message",
        "the agent answers on a Unix socket in its state directory; `legwave health` reads it "
        "before the rest of the command line loads (standard library only)",
        "0.264 s (and a frozen agent passed: its retained `online` stood)",
        "see the table (`--broker` keeps the old check)",
    ),
    (
        "idle devices: CPU per device tick (fleet of 100 idle, one process, 10 s)",
        "a tick timed by part: the simulator integrated five 20 ms physics steps per idle "
        "100 ms (47.5 of 91 µs of the device's share) although no air moved; and every device "
        "woke at its own phase, one epoll wake-up each",
        "at rest (no air, no inlet open) the physics jumps to its exact solution in one step; "
        "idle ticks fall on whole milliseconds, so devices in the same millisecond wake together",
        "270 µs, 27 % of a core; a fleet of 1,000 idle over 2 processes: 216 µs, 35 % of ticks "
        "late, 972 devices latched `loop_overrun`",
        "172 µs, 17 % of a core (the physics 15 µs); the 1,000: 147 µs, 11 % of ticks late, "
        "no fault",
    ),
    (
        "tick lateness, loop alone",
        "epoll rounds every wait up to the next millisecond, so every tick woke 0 to 1 ms late",
        "aim the wake-up half a millisecond early",
        "p50 0.77, p99 1.33, max 1.43 ms (60 s)",
        "p50 0.24, p99 0.77, max 1.51 ms (60 s)",
    ),
]

TEMPLATE = """# Performance

Measured with `{command}` on {date} ({machine}), against a loopback mosquitto started for the
run. Every figure sits beside its baseline from the same run: this machine is shared and noisy,
so only the two together mean something. Re-run it to refresh this page.

{table}

## On a Raspberry Pi

The speed ratio comes from one CPU-bound Python benchmark run here and quoted for the Pi: the
n-body program of the Computer Language Benchmarks Game, 5 million steps. Here it takes {nbody} s
(scaled from the steps run); a Raspberry Pi 4 at 1.5 GHz takes 158.26 s (published run with the
performance governor; its Python version is older than ours, so the Pi figure is a little
pessimistic). That makes a Pi 4 {pi4}× slower than this machine in Python. A Pi Zero 2 W (Cortex-A53
at 1 GHz) is taken as {zero2}× slower again than a Pi 4 (Cortex-A72 at 1.5 GHz), from Arm's
published DMIPS/MHz for the two cores (2.3 and 4.7). Projected from the simulated-session tick,
which includes the simulator's physics (on a Pi the sensors are read by sampler threads instead):

{projections}

So a Pi 4 runs the control loop with most of every period to spare, and a Zero 2 W has room as
well; both are single-core figures, and the Pi's other cores carry the sampler threads, the MQTT
client and the rest.

## Beside mqtt-io: the rows still missed

- **CPU idle.** On this machine a wake-up is dear: a bare `asyncio.sleep(0.1)` loop costs
  0.24 % of one core in thread CPU time and a bare `epoll.poll(0.1)` loop 0.08 %, before any
  work; a timed wait measured alone costs 75 to 100 µs of CPU per wake-up here. The supervisor
  watches the sensors at 10 Hz or more, so 0.3 % leaves 300 µs per tick for the wake-up and the
  tick together. The device's own idle tick is now about 50 to 70 µs (the physics at rest in
  closed form: 15 µs), the agent's after-tick about 15 µs, and the idle sleep, which ends early
  for a command (`asyncio.timeout` around an event), about 25 µs more than a plain sleep. What
  it would take: a sleep that a command can end without a timeout context, a lighter idle step
  (no pattern, no regulator while everything is vented), and a machine where a timer costs what
  it costs on a Pi.
- **Running with telemetry** (against 2 %): met on a quiet day (1.8 % on 2026-12-02), 2.4 to
  3.5 % on slower ones: 50 wake-ups a second at the cost above are 0.4 to 0.5 % alone, and a
  running tick with its physics about 40 µs more (the simulated-session row).
- **Setting change and start → state** (1.4× and 1.5× the echo, against 1.3× and 1.5×; stop →
  state is met). Timed inside a running agent from the read of a command to the write of its
  state, commands 60 ms apart as in the run: parsing and validating it 0.16 ms, applying it
  0.06 ms, the state snapshot queued 0.13 ms, then two passes of the event loop (the sender's
  turn, then the publish's task) and paho's write 0.3 ms: about 0.7 ms, where the echo's own
  part is one pass and a write. A command's memory write, its second state snapshot and a
  second JSON pass are already off this path (see below). What it would take: a command path
  without validation models, a state serialised without pydantic, and a publish handed to paho
  from the command handler itself (an eagerly started task, Python 3.12).
- **Start → online** (0.28 s against half of mqtt-io's 0.34 s): the import below is nearly all
  of it; the connection and the discovery message take about 20 ms.
- **Import.** `python -X importtime -c "import bridge.service"`: pydantic and
  pydantic-settings about 45 ms, the settings models about 45 ms (`device.settings` 19 ms, the Pi
  wiring model 12 ms), `bridge.codec` with the control logic 70 ms, asyncio with ssl and logging
  42 ms, aiomqtt and paho 14 ms. Already cut: the Pi backend no longer loads with the wiring
  model (`device.backends.pi` 17.9 → 0.3 ms), PyYAML loads only with a configuration file, and
  the subcommands load only the one that runs. The agent needs every one of the rest before it
  can say `online`: what it would take is settings models without pydantic-settings (an
  environment reader of our own, about 20 ms) and a control package that loads its patterns on
  first use.
- **Fleets** (100 devices in one process, 1,000 over both cores, most idle): 1,000 devices at
  10 Hz are 10,000 ticks a second; at about 100 to 150 µs a tick with its agent that is 1 to 1.5
  cores before the broker and the subscriber. On a quiet day 0.2 % of the ticks start late; on a
  slow one a tenth. When a process stalls (worst 95 ms in this run, the machine's scheduler),
  every device in it misses its deadline at once and latches `loop_overrun`, as a real device
  must. Every state still arrives. What it would take: the idle tick at a third of its cost (the
  items above), or three cores.
- **RSS** (42 MB against 33): the same imports. Peak RSS of a bare interpreter after each import
  (2026-12-02): nothing 8.4 MB, asyncio with ssl and logging 19.1, aiomqtt 24.0, pydantic with
  its models 21.4, pydantic-settings 34.6 (it loads asyncio, pydantic's dataclasses and its
  cloud sources), `bridge.config` 37.7, the whole agent 39.8 before it starts. mqtt-io carries no
  validation models. What it would take: the settings and the messages without pydantic, about
  9 MB; the validation they give (every bad field named, docs/mqtt.md) would have to be written
  by hand.

## Profiled and fixed

Each of these was found by a row of this table missing its target, measured before and after the
fix on this machine (2026-11-26 to 2026-12-02), with the rest of the run unchanged:

{fixed}

## Plots

{plots}

## Notes

{notes}
"""


def plot(fig: Figures) -> list[str]:
    """Tick lateness over time and the latency distributions, as PNGs in docs/img."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    f, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    for label, values in (
        ("500/s flood + 5 Hz telemetry", fig.lateness_flood),
        ("loop alone", fig.lateness_quiet),
    ):
        if values:
            xs = [i * PERIOD_MS / 1000 for i in range(len(values))]
            ax.plot(xs, [1000 * v for v in values], lw=0.5, label=label)
    ax.set_xlabel("seconds")
    ax.set_ylabel("tick lateness (ms)")
    ax.axhline(2.0, color="grey", lw=0.8, ls="--")
    ax.legend(loc="upper right")
    ax.set_title("Control loop at 50 Hz: how late each tick starts")
    f.tight_layout()
    f.savefig(IMG / "perf-lateness.png")
    plt.close(f)
    out.append("![Tick lateness over time, under load and alone](img/perf-lateness.png)")

    f, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    series = (
        ("echo round trip", fig.echo_ms),
        ("command → state", fig.command_ms),
        ("stop → valves", fig.stop_ms),
    )
    top = max(pct(v, 0.995) for _, v in series if v)
    for label, values in series:
        if values:
            ax.hist([min(v, top) for v in values], bins=60, range=(0, top), alpha=0.6, label=label)
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("samples")
    ax.legend()
    ax.set_title("Latency distributions (loopback mosquitto)")
    f.tight_layout()
    f.savefig(IMG / "perf-latency.png")
    plt.close(f)
    out.append("![Latency distributions](img/perf-latency.png)")
    if fig.peer.echo_ms:
        out.append(peer.plot(fig.peer, IMG))
    return out


async def run_all(args: argparse.Namespace) -> Figures:
    """Every benchmark, in one run."""
    fig = Figures()
    work = Path(tempfile.mkdtemp(prefix="legwave-perf-"))
    broker = Mosquitto(folder=work).start()
    try:
        print("latency, start, memory and CPU …", flush=True)
        await latency_and_footprint(fig, broker, args.samples, work)
        print("stop → valves …", flush=True)
        await stop_to_valves(fig, broker, args.stop_samples, work)
        print(f"control loop under a flood ({args.loop_minutes:g} min, then alone) …", flush=True)
        await loop_under_flood(fig, broker, args.loop_minutes, work)
        print(f"fleet of {args.fleet} …", flush=True)
        await fleet(fig, broker, args.fleet, args.fleet_seconds, work)
        big, spread, running = (
            args.large_fleet,
            args.large_fleet_processes,
            args.large_fleet_running,
        )
        print(f"fleet of {big} over {spread} processes, {running} in a session …", flush=True)
        await fleet(fig, broker, big, args.fleet_seconds, work, processes=spread, running=running)
        print("beside mqtt-io and a bare echo …", flush=True)
        await peer.side_by_side(fig.peer, broker, args.peer_samples, args.peer_rounds, work)
        fig.rows += [Row(r.what, r.target, r.measured, r.baseline, r.met) for r in fig.peer.rows]
        fig.notes += fig.peer.notes
    finally:
        broker.stop()
    print("simulated session …", flush=True)
    simulation_speed(fig)
    print("n-body …", flush=True)
    projection(fig, args.nbody_steps)
    print("garbage collection …", flush=True)
    gc_pause(fig)
    return fig


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, write docs/performance.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--stop-samples", type=int, default=50)
    parser.add_argument("--loop-minutes", type=float, default=10.0)
    parser.add_argument("--fleet", type=int, default=100)
    parser.add_argument("--fleet-seconds", type=float, default=60.0)
    parser.add_argument("--large-fleet", type=int, default=1000)
    parser.add_argument("--large-fleet-processes", type=int, default=2)
    parser.add_argument("--large-fleet-running", type=int, default=50)
    parser.add_argument("--nbody-steps", type=int, default=500_000)
    parser.add_argument("--peer-samples", type=int, default=200)
    parser.add_argument("--peer-rounds", type=int, default=5)
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    fig = asyncio.run(run_all(args))
    for r in fig.rows:
        mark = "ok  " if r.met else "MISS"
        print(
            f"{mark} {r.what}\n     target {r.target}; measured {r.measured}; baseline {r.baseline}"
        )
    for line in projections_table(fig):
        print(line)
    if not args.no_doc:
        write_doc(fig, args, plot(fig))
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
