"""Soak: random commands, link trouble and hardware faults, seed after seed (`testkit/soak.py`).

Each seed runs the device on the simulator for `minutes` of virtual time, with the physics'
truth checked every tick (the invariants are listed in `testkit/soak.py`).

Run: bench/run soak [--seeds 50] [--minutes 30] [--first-seed 1]. It prints one line per
seed and a summary, and exits 1 on any violation. `LEGWAVE_SOAK=1 scripts/test -m soak` runs it too.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.soak import SoakReport, soak


def line(r: SoakReport) -> str:
    """One line of the table."""
    faults = ",".join(f"{k}×{v}" for k, v in sorted(r.faults.items())) or "-"
    return (
        f"{r.seed:>5} {r.minutes:>5.0f} {r.commands:>5} {r.dropped:>4} {r.late:>4} "
        f"{r.duplicated:>4} {r.sessions:>4} {r.max_pressure:>6.1f} {r.max_heater:>5.1f} "
        f"{len(r.violations):>4}  {' '.join(r.injected) or '-'}  [{faults}]"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the seeds, print the table and a summary; exit 1 on any violation."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    print(" seed   min  cmds drop late  dup sess maxmmHg  maxC viol  injected  [faults raised]")
    reports = []
    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        for r in pool.map(soak, seeds, [args.minutes] * len(seeds)):
            reports.append(r)
            print(line(r), flush=True)
            for v in r.violations[:5]:
                print(f"        VIOLATION {v}")
    injected = Counter(i.split("@")[0] for r in reports for i in r.injected)
    raised: Counter[str] = sum((r.faults for r in reports), Counter())
    violations = sum(len(r.violations) for r in reports)
    print(
        f"\n{len(reports)} seeds × {args.minutes:g} simulated min in "
        f"{time.perf_counter() - t0:.0f} s: {sum(r.commands for r in reports)} commands "
        f"({sum(r.dropped for r in reports)} lost to outages, {sum(r.late for r in reports)} "
        f"delivered late, {sum(r.duplicated for r in reports)} twice), "
        f"{sum(r.sessions for r in reports)} sessions"
    )
    print(f"hardware faults injected: {dict(sorted(injected.items()))}")
    print(f"faults raised: {dict(sorted(raised.items()))}")
    print(
        f"max pressure {max(r.max_pressure for r in reports):.1f} mmHg, "
        f"max heater {max(r.max_heater for r in reports):.1f} °C; violations: {violations}"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
