"""legwave beside the peer a user would pick instead, and beside a bare aiomqtt echo.

The peer is mqtt-io 2.7 (PyPI `mqtt-io`), the closest Python GPIO ↔ MQTT ↔ Home Assistant bridge,
driving one digital output through its `stdio` GPIO module with Home Assistant discovery on. It is
installed into a venv of its own under `.bench/` (kept for the next run); when it cannot be
installed its rows say so and the rest is measured anyway.

All three run at once on one loopback mosquitto and are driven interleaved, sample by sample, so a
noisy moment of this shared machine falls on all of them alike.

Run alone: bench/run peer [--samples 200] [--rounds 5]; bench/run (everything) includes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt

from bridge.broker import Mosquitto
from bridge.transport import NO_DELAY
from testkit.recorder import Match, Recorder

ROOT = Path(__file__).resolve().parents[1]
CHILDREN = Path(__file__).resolve().parent / "children"
PEER = "mqtt-io==2.7.0"
PEER_VENV = ROOT / ".bench" / "mqtt-io-2.7.0"
DEVICE = "benchpeer"
BASE = f"legwave/{DEVICE}"
IO = "bench/mqttio"
MATCH = Match


@dataclass
class Result:
    """One row: what, target, measured, baseline (same run), met."""

    what: str
    target: str
    measured: str
    baseline: str
    met: bool | None


@dataclass
class Peer:
    """Everything measured side by side."""

    echo_ms: list[float] = field(default_factory=list)
    setting_ms: list[float] = field(default_factory=list)
    start_ms: list[float] = field(default_factory=list)
    stop_ms: list[float] = field(default_factory=list)
    peer_ms: list[float] = field(default_factory=list)
    rows: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0-1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peer_python() -> Path | None:
    """The peer's interpreter, installing it on first use; None (and why, printed) if it cannot."""
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"installing {PEER} into {PEER_VENV.relative_to(ROOT)} (once) …", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", PEER],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        print(f"cannot install {PEER}: {tail[0]}; its rows are skipped", flush=True)
        shutil.rmtree(PEER_VENV, ignore_errors=True)
        return None
    return python


def peer_config(port: int, folder: Path) -> Path:
    """mqtt-io's configuration: one output on the stdio GPIO module, discovery on."""
    path = folder / "mqtt-io.yml"
    path.write_text(
        f"""mqtt:
  host: 127.0.0.1
  port: {port}
  topic_prefix: {IO}
  client_id: mqttio-bench
  ha_discovery:
    enabled: yes
gpio_modules:
  - name: stdio
    module: stdio
digital_outputs:
  - name: pump
    module: stdio
    pin: 1
    initial: low
    publish_initial: yes
"""
    )
    return path


class Watch(Recorder):
    """Every message on the watched topics, timed on the performance counter."""

    def __init__(self, client: aiomqtt.Client) -> None:
        super().__init__(client, time.perf_counter)

    async def wait(self, match: MATCH, after: float, within: float = 10.0) -> float:
        """When the first message after `after` that `match`es arrived."""
        return await self.wait_for(match, after, within)

    def forget(self) -> None:
        """Drop what was recorded (the waits look at what comes next)."""
        self.seen.clear()


def on(topic: str, payload: bytes) -> MATCH:
    """`payload` on `topic`, retained or not."""
    return lambda t, p, _r: t == topic and p == payload


def live(topic: str, payload: bytes) -> MATCH:
    """`payload` on `topic`, published now (not a retained copy)."""
    return lambda t, p, r: t == topic and p == payload and not r


def state_where(**wanted: object) -> MATCH:
    """A legwave state whose fields have the `wanted` values (a tuple: any of them)."""

    def match(topic: str, payload: bytes, _retain: bool) -> bool:
        if topic != f"{BASE}/state":
            return False
        body = json.loads(payload)
        return all(
            body.get(k) in v if isinstance(v, tuple) else body.get(k) == v
            for k, v in wanted.items()
        )

    return match


def legwave_env(port: int, work: Path) -> dict[str, str]:
    """The environment of the legwave agent and of `legwave health`."""
    return {
        **os.environ,
        "LEGWAVE_DEVICE_ID": DEVICE,
        "LEGWAVE_STATE_DIR": str(work / "legwave-state"),
        "LEGWAVE_MQTT__HOST": "127.0.0.1",
        "LEGWAVE_MQTT__PORT": str(port),
        "LEGWAVE_TELEMETRY_HZ": "5",
    }


def start_legwave(port: int, work: Path) -> subprocess.Popen[bytes]:
    """`legwave run` on the simulator, as a user starts it."""
    with (work / "legwave.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "run"],
            env=legwave_env(port, work),
            stdout=log,
            stderr=log,
        )


def start_peer(python: Path, port: int, work: Path) -> subprocess.Popen[bytes]:
    """mqtt-io with its one output."""
    with (work / "mqtt-io.log").open("ab") as log:
        return subprocess.Popen(
            [str(python), "-m", "mqtt_io", str(peer_config(port, work))], stdout=log, stderr=log
        )


async def send(watch: Watch, topic: str, payload: bytes, match: MATCH, into: list[float]) -> None:
    """Publish, wait for the answer that `match`es, and record the round trip in ms."""
    await asyncio.sleep(0.06)  # under legwave's 20 commands/s flood limit
    sent = time.perf_counter()
    await watch.client.publish(topic, payload, qos=1)
    into.append(1000 * (await watch.wait(match, sent) - sent))


async def latencies(watch: Watch, fig: Peer, samples: int, peer: bool) -> None:
    """Echo, the peer's output, a legwave setting, start and stop: one of each per round."""
    for i in range(samples):
        token = str(i).encode()
        await send(watch, "bench/echo/in", token, on("bench/echo/out", token), fig.echo_ms)
        if peer:
            value = b"ON" if i % 2 == 0 else b"OFF"
            await send(
                watch, f"{IO}/output/pump/set", value, on(f"{IO}/output/pump", value), fig.peer_ms
            )
        level = 4 + i % 2  # never the default 3: every command changes the state
        body = json.dumps({"intensity": level}).encode()
        await send(watch, f"{BASE}/set", body, state_where(intensity=level), fig.setting_ms)
        start = b'{"action": "start"}'
        await send(watch, f"{BASE}/set", start, state_where(status="fit_check"), fig.start_ms)
        stop = b'{"action": "stop"}'
        ended = state_where(status=("venting", "idle"))
        await send(watch, f"{BASE}/set", stop, ended, fig.stop_ms)


async def footprint(
    watch: Watch, fig: Peer, pids: dict[str, int], seconds: float
) -> dict[str, tuple[float, float, float, float]]:
    """CPU (% of one core) and RSS idle, then running (legwave in a session, 5 Hz telemetry)."""
    await asyncio.sleep(5.0)  # the last stop has vented
    idle = await _cpu(pids, seconds)
    rss_idle = {name: rss_mb(pid) for name, pid in pids.items()}
    await watch.client.publish(f"{BASE}/set", b'{"action": "start", "duration_min": 10}', qos=1)
    if "mqtt-io" in pids:
        await watch.client.publish(f"{IO}/output/pump/set", b"ON", qos=1)
    await asyncio.sleep(5.0)
    running = await _cpu(pids, seconds)
    rss_running = {name: rss_mb(pid) for name, pid in pids.items()}
    await watch.client.publish(f"{BASE}/set", b'{"action": "stop"}', qos=1)
    return {name: (idle[name], running[name], rss_idle[name], rss_running[name]) for name in pids}


async def _cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - t0
    return {name: 100 * (cpu_s(pid) - before[name]) / wall for name, pid in pids.items()}


async def lifecycle(
    watch: Watch, rounds: int, port: int, work: Path, python: Path | None, notes: list[str]
) -> dict[str, tuple[list[float], list[float]]]:
    """Start → online (discovery before it) and SIGTERM → offline published and exit, per round."""
    out: dict[str, tuple[list[float], list[float]]] = {"legwave": ([], [])}
    if python is not None:
        out["mqtt-io"] = ([], [])
    for _ in range(rounds):
        for name in list(out):
            if name == "legwave":
                proc = start_legwave(port, work)
                online, offline = live(f"{BASE}/availability", b"online"), b"offline"
                gone = live(f"{BASE}/availability", offline)
            else:
                assert python is not None
                proc = start_peer(python, port, work)
                online = live(f"{IO}/status", b"running")
                gone = live(f"{IO}/status", b"dead")
            started = time.perf_counter()
            up = await watch.wait(online, started, 30)
            out[name][0].append(up - started)
            await asyncio.sleep(1.0)
            term = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            while proc.poll() is None:
                await asyncio.sleep(0.001)
            exited = time.perf_counter()
            said = await _said_or_none(watch, gone, term)  # already there, or never
            if said is None:
                fig_note = f"{name} published no `offline` of its own on SIGTERM"
                if fig_note not in notes:
                    notes.append(fig_note)
            out[name][1].append(max(exited, said or exited) - term)
    return out


async def _said_or_none(watch: Watch, match: MATCH, after: float) -> float | None:
    try:
        return await watch.wait(match, after, 1.0)
    except TimeoutError:
        return None


def import_and_health(port: int, work: Path, calls: int = 5) -> dict[str, float]:
    """The agent's import (wall, best of `calls`) and `legwave health` (CPU per call).

    `legwave health` is timed against a running agent, and each call must say `online`.
    """

    def wall(code: str) -> float:
        best = float("inf")
        for _ in range(calls):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best = min(best, time.perf_counter() - t0)
        return best

    def cpu(cmd: list[str], env: dict[str, str] | None = None) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(calls):
            subprocess.run(cmd, env=env, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return used / calls

    health = [sys.executable, "-m", "bridge.cli", "health"]
    env = legwave_env(port, work)
    agent = start_legwave(port, work)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(health, env=env, capture_output=True, check=False).returncode:
            if agent.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the agent never said online: see {work / 'legwave.log'}")
            time.sleep(0.1)
        health_cpu = cpu(health, env)
        broker_cpu = cpu([*health, "--broker"], env)
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    return {
        "import_agent": wall("import bridge.cli, bridge.service"),
        "import_nothing": wall("pass"),
        "health_cpu": health_cpu,
        "health_broker_cpu": broker_cpu,
        "aiomqtt_cpu": cpu([sys.executable, "-c", "import aiomqtt"]),
    }


async def side_by_side(fig: Peer, broker: Mosquitto, samples: int, rounds: int, work: Path) -> None:
    """Every peer row, into `fig.rows`."""
    python = peer_python()
    port = broker.port
    echo = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
        [sys.executable, str(CHILDREN / "echo.py"), str(port)], stdout=subprocess.PIPE
    )
    assert echo.stdout is not None
    echo.stdout.readline()
    procs: dict[str, subprocess.Popen[bytes]] = {"echo": echo}
    async with aiomqtt.Client("127.0.0.1", port, socket_options=NO_DELAY) as client:
        watch = Watch(client)
        pumping = asyncio.create_task(watch.pump())
        for topic in ("bench/echo/out", f"{BASE}/state", f"{BASE}/availability", f"{IO}/#"):
            await client.subscribe(topic, qos=1)
        try:
            now = time.perf_counter()
            procs["legwave"] = start_legwave(port, work)
            await watch.wait(live(f"{BASE}/availability", b"online"), now, 30)
            if python is not None:
                procs["mqtt-io"] = start_peer(python, port, work)
                await watch.wait(live(f"{IO}/status", b"running"), now, 30)
            await asyncio.sleep(1.0)
            print(f"  {samples} rounds of echo, peer, setting, start and stop …", flush=True)
            await latencies(watch, fig, samples, python is not None)
            watch.forget()
            print("  CPU and memory, idle and running …", flush=True)
            pids = {name: p.pid for name, p in procs.items()}
            feet = await footprint(watch, fig, pids, 20.0)
        finally:
            for name, p in procs.items():
                if name != "echo":
                    p.terminate()
                    p.wait(timeout=15)
        watch.forget()
        print(f"  {rounds} starts and stops of each …", flush=True)
        life = await lifecycle(watch, rounds, port, work, python, fig.notes)
        pumping.cancel()
    echo.terminate()
    echo.wait(timeout=5)
    print("  import and health …", flush=True)
    costs = import_and_health(port, work)
    rows(fig, feet, life, costs, python is not None)


def rows(
    fig: Peer,
    feet: dict[str, tuple[float, float, float, float]],
    life: dict[str, tuple[list[float], list[float]]],
    costs: dict[str, float],
    peer: bool,
) -> None:
    """The table's rows from the figures."""
    e50, e99 = pct(fig.echo_ms, 0.5), pct(fig.echo_ms, 0.99)
    s50, s99 = pct(fig.setting_ms, 0.5), pct(fig.setting_ms, 0.99)
    p50 = pct(fig.peer_ms, 0.5) if peer else float("nan")
    peer_cell = f"mqtt-io {p50:.2f} ms ({p50 / e50:.2f}× echo)" if peer else "mqtt-io: not run"
    add = fig.rows.append
    add(
        Result(
            "setting change → state, p50 / p99",
            "≤ 1.3× / ≤ 2× echo, p50 below mqtt-io's",
            f"{s50:.2f} / {s99:.2f} ms ({s50 / e50:.2f}× / {s99 / e99:.2f}×)",
            f"echo {e50:.2f} / {e99:.2f} ms; {peer_cell}",
            s50 <= 1.3 * e50 and s99 <= 2 * e99 and (not peer or s50 < p50),
        )
    )
    t50, o50 = pct(fig.start_ms, 0.5), pct(fig.stop_ms, 0.5)
    add(
        Result(
            "start → state / stop → state, p50",
            "≤ 1.5× echo",
            f"{t50:.2f} / {o50:.2f} ms ({t50 / e50:.2f}× / {o50 / e50:.2f}×)",
            f"echo {e50:.2f} ms",
            max(t50, o50) <= 1.5 * e50,
        )
    )
    lw = feet["legwave"]
    others = "; ".join(f"{n} {v[0]:.2f} / {v[1]:.2f} %" for n, v in feet.items() if n != "legwave")
    add(
        Result(
            "CPU idle / running with 5 Hz telemetry, % of one core",
            "≤ 0.3 % / ≤ 2 %",
            f"{lw[0]:.2f} / {lw[1]:.2f} %",
            others,
            lw[0] <= 0.3 and lw[1] <= 2,
        )
    )
    rss = "; ".join(f"{n} {v[2]:.1f} / {v[3]:.1f} MB" for n, v in feet.items() if n != "legwave")
    add(
        Result(
            "RSS idle / running",
            "≤ 33 MB",
            f"{lw[2]:.1f} / {lw[3]:.1f} MB",
            rss,
            max(lw[2], lw[3]) <= 33,
        )
    )
    medians = {name: tuple(statistics.median(v) for v in pair) for name, pair in life.items()}
    up, down = medians["legwave"]
    up_peer, down_peer = medians.get("mqtt-io", (float("nan"), float("nan")))
    add(
        Result(
            "start → discovery and online, median",
            "≤ 0.5× mqtt-io's",
            f"{up:.2f} s",
            f"mqtt-io {up_peer:.2f} s" if peer else "mqtt-io: not run",
            up <= 0.5 * up_peer if peer else None,
        )
    )
    add(
        Result(
            "import of the agent (best of 5)",
            "≤ 200 ms",
            f"{1000 * costs['import_agent']:.0f} ms",
            f"`python -c pass` {1000 * costs['import_nothing']:.0f} ms",
            costs["import_agent"] <= 0.2,
        )
    )
    add(
        Result(
            "SIGTERM → offline published and exit, median",
            "≤ 0.15 s",
            f"{down:.3f} s",
            f"mqtt-io {down_peer:.3f} s" if peer else "mqtt-io: not run",
            down <= 0.15,
        )
    )
    add(
        Result(
            "`legwave health`, CPU per call",
            "≤ 0.1 s",
            f"{costs['health_cpu']:.3f} s (asking the broker, `--broker`: "
            f"{costs['health_broker_cpu']:.3f} s)",
            f"`python -c 'import aiomqtt'` {costs['aiomqtt_cpu']:.3f} s",
            costs["health_cpu"] <= 0.1,
        )
    )


def plot(fig: Peer, img: Path) -> str:
    """The latency distributions of all three side by side; returns the Markdown image line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        ("echo", fig.echo_ms),
        ("mqtt-io output", fig.peer_ms),
        ("legwave setting", fig.setting_ms),
        ("legwave start", fig.start_ms),
        ("legwave stop", fig.stop_ms),
    ]
    series = [(label, values) for label, values in series if values]
    f, ax = plt.subplots(figsize=(9, 3.4), dpi=110)
    ax.boxplot([v for _, v in series], whis=(1, 99), showfliers=False)
    ax.set_xticks(range(1, len(series) + 1), [label for label, _ in series])
    ax.set_ylabel("milliseconds (box: quartiles, whiskers: p1-p99)")
    ax.set_title("Command → state on one loopback mosquitto, interleaved sample by sample")
    f.tight_layout()
    f.savefig(img / "perf-peer.png")
    plt.close(f)
    return "![legwave, mqtt-io and a bare echo side by side](img/perf-peer.png)"


def print_rows(fig: Peer) -> None:
    """The rows, for the terminal."""
    for r in fig.rows:
        mark = "ok  " if r.met else ("MISS" if r.met is False else "—   ")
        print(f"{mark} {r.what}\n     target {r.target}; measured {r.measured}; {r.baseline}")


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="legwave-peer-"))
    broker = Mosquitto(folder=work).start()
    fig = Peer()
    try:
        asyncio.run(side_by_side(fig, broker, args.samples, args.rounds, work))
    finally:
        broker.stop()
    print_rows(fig)
    for note in fig.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
