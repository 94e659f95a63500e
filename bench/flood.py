"""The flood suite: `stop` and `vent` against floods of junk on `…/set`.

At 1,000 and 4,000 messages a second and as fast as this machine can send (the flooder,
`testkit/flooder.py`, speaks MQTT over a raw socket, far faster than any MQTT library), and, as
the baseline in the same run, with no flood at all. For each: a person's client (another
process) starts a session on the power line, then sends `stop` or `vent` on `…/set` or on
`…/power` in turn; measured is the time from its publish to the first exhaust valve told to
open, and whether it happened at all. Also: how late the 50 Hz control ticks were, the agent's
memory before and after, the log lines it wrote, and how many messages it handled.

Run: bench/run flood [--probes 16] [--write-doc]. With --write-doc the
table replaces the one in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.valves import time_exhaust_orders
from bridge.agent import Agent
from bridge.broker import Mosquitto
from bridge.config import load_settings
from bridge.service import serving
from device.control.massager import Status
from testkit.flooder import flooder_command

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
PROBE = ROOT / "bench" / "probe.py"
DEVICE = "benchflood"
BASE = f"legwave/{DEVICE}"
LOST_AFTER_S = 3.0
RATES: list[tuple[str, float | None]] = [
    ("none (baseline)", None),
    ("1,000/s", 1000.0),
    ("4,000/s", 4000.0),
    ("as fast as it can", 0.0),
]


@dataclass
class Result:
    """One flood rate's figures."""

    label: str
    sent_per_s: float = 0.0
    handled_per_s: float = 0.0
    latency_ms: dict[str, list[float | None]] = field(
        default_factory=lambda: {"set": [], "power": []}
    )
    lateness_ms: list[float] = field(default_factory=list)
    missed: int = 0
    faults: int = 0
    rss_before: float = 0.0
    rss_after: float = 0.0
    log_lines: int = 0


class LineCounter(logging.Handler):
    """Counts what the agent would have written to its log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Count one line."""
        self.count += 1


def rss_mb() -> float:
    """This process's resident memory (the agent runs in it), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0-1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


async def run_one(
    label: str, rate: float | None, seconds: float, probes: int, work: Path
) -> Result:
    """One flood (or none), against a broker of its own as shipped (64 KiB packets at most)."""
    broker = Mosquitto(folder=work).start()
    settings = load_settings(
        None,
        device_id=DEVICE,
        state_dir=work / "state",
        telemetry_hz=5,
        mqtt={"host": "127.0.0.1", "port": broker.port},
    )
    try:
        async with serving(settings, host="127.0.0.1", port=broker.port) as agent:
            return await measure(agent, broker.port, Result(label), rate, seconds, probes)
    finally:
        broker.stop()


async def measure(
    agent: Agent, port: int, result: Result, rate: float | None, seconds: float, probes: int
) -> Result:
    """The probes through the flood, the ticks, memory and log lines."""
    opened = time_exhaust_orders(agent)
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        str(port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert probe.stdin is not None and probe.stdout is not None
    counter = LineCounter()
    root = logging.getLogger()
    try:
        await asyncio.wait_for(agent.connected.wait(), 15)
        await asyncio.wait_for(agent.power_line_connected.wait(), 15)
        await probe.stdout.readline()
        gc.freeze()  # as `legwave run` does once it has started
        await asyncio.sleep(1.0)
        result.rss_before = rss_mb()
        commands_before = agent.stats.commands
        flooder = None
        if rate is not None:
            command = flooder_command(port, f"{BASE}/set", rate=rate, seconds=seconds)
            flooder = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        root.addHandler(counter)
        await asyncio.sleep(1.0)  # the flood under way
        agent.runner.lateness = result.lateness_ms
        overruns = agent.runner.overruns
        t0 = time.monotonic()

        async def send(topic: str, payload: str) -> float:
            assert probe.stdin is not None and probe.stdout is not None
            probe.stdin.write(f"{topic} {payload}\n".encode())
            return float(await probe.stdout.readline())

        for i in range(probes):
            path = "set" if i % 2 == 0 else "power"
            action = "stop" if i % 4 < 2 else "vent"
            await send(f"{BASE}/power", '{"power": "ON"}')
            deadline = time.monotonic() + 2.0
            while agent.massager.status is not Status.FIT_CHECK and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            before = len(opened)
            sent = await send(f"{BASE}/{path}", json.dumps({"action": action}))
            while len(opened) == before and time.monotonic() - sent < LOST_AFTER_S:
                await asyncio.sleep(0.001)
            got = opened[before] if len(opened) > before else None
            result.latency_ms[path].append(None if got is None else 1000 * (got - sent))
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - t0
        agent.runner.lateness = None
        root.removeHandler(counter)
        result.log_lines = counter.count
        result.missed = agent.runner.overruns - overruns
        result.faults = int(agent.massager.fault is not None)
        result.handled_per_s = (agent.stats.commands - commands_before) / (elapsed + 1.0)
        if flooder is not None:
            if flooder.returncode is None:
                flooder.terminate()
            out, _ = await flooder.communicate()
            report = json.loads(out)
            result.sent_per_s = report["sent"] / report["seconds"]
        # (the loop aims half a millisecond early: a tick ahead of its deadline is not late)
        result.lateness_ms = [max(0.0, 1000 * v) for v in result.lateness_ms]
        await asyncio.sleep(1.0)
        result.rss_after = rss_mb()
    finally:
        root.removeHandler(counter)
        probe.stdin.close()
        await probe.wait()
    return result


def applied(values: list[float | None]) -> str:
    """`n/N, p50 / max ms` for one path's probes."""
    got = [v for v in values if v is not None]
    if not got:
        return f"0/{len(values)}"
    return f"{len(got)}/{len(values)}, {pct(got, 0.5):.1f} / {max(got):.1f} ms"


def table(results: list[Result]) -> list[str]:
    """The results as a Markdown table."""
    lines = [
        "| flood on `…/set` | sent / handled by the agent, a second | `stop`/`vent` on "
        "`…/set`: applied, p50 / max | on `…/power`: applied, p50 / max | ticks late p99 / "
        "max, missed periods | memory before → after | log lines |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sent = "—" if not r.sent_per_s else f"{r.sent_per_s:,.0f} / {r.handled_per_s:,.0f}"
        late = r.lateness_ms or [0.0]
        lines.append(
            f"| {r.label} | {sent} | {applied(r.latency_ms['set'])} | "
            f"{applied(r.latency_ms['power'])} | {pct(late, 0.99):.2f} / {max(late):.2f} ms, "
            f"{r.missed} | {r.rss_before:.1f} → {r.rss_after:.1f} MB | {r.log_lines} |"
        )
    return lines


def write_doc(lines: list[str], args: argparse.Namespace) -> None:
    """Replace the table between the markers in docs/reliability.md."""
    text = DOC.read_text()
    stamp = f"<!-- flood:begin (bench/run flood --probes {args.probes} --write-doc) -->"
    block = "\n".join([stamp, *lines, "<!-- flood:end -->"])
    new, count = re.subn(r"<!-- flood:begin.*?<!-- flood:end -->", block, text, flags=re.DOTALL)
    if count != 1:
        raise SystemExit(f"{DOC}: no flood table to replace (the flood:begin/end markers)")
    DOC.write_text(new)


async def run_all(args: argparse.Namespace) -> list[Result]:
    """Every rate, one after the other, each against a broker of its own."""
    results = []
    logging.getLogger("bridge").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="legwave-flood-") as tmp:
        for i, (label, rate) in enumerate(RATES):
            work = Path(tmp) / f"run{i}"
            work.mkdir()
            result = await run_one(label, rate, args.seconds, args.probes, work)
            print(table([result])[-1], flush=True)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, and write it into docs/reliability.md if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=120.0,
        help="the longest a flood lasts (it ends with the probes)",
    )
    parser.add_argument("--probes", type=int, default=16, help="stop/vent probes per rate")
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(handlers=[logging.NullHandler()])  # counted, not printed
    results = asyncio.run(run_all(args))
    lines = table(results)
    print("\n".join(lines))
    if args.write_doc:
        write_doc(lines, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
