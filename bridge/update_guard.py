"""Whether an update came online, and the way back when it did not.

An install (bridge/updates.py) leaves a *trial* in the state directory: the version it left,
the one it installed, and wheels of everything it replaced. systemd runs this file around each
start of the agent (deploy/legwave.service), with the standard library only (``python -S``):
it must work whatever the release just installed does, so it is installed once beside the
environment (deploy/install.sh) and is not replaced by an update.

``before`` (ExecStartPre): one more start of the new release; after ``MAX_STARTS`` starts that
did not come online, reinstall the previous release from its wheels and let it start instead.
An install that was cut short (the agent stopped or killed while pip ran) is rolled back at once.

``after`` (ExecStartPost): wait until the new release says it is online (connected to the
broker, state published); if it does not within ``ONLINE_WITHIN_S``, fail the start, so that
systemd stops it and starts it again.

Without a trial, both return at once. Exit status: 0, or 1 when a start must fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MAX_STARTS = 2  # an update then takes 3 starts: within the unit's 5 in 2 minutes
ONLINE_WITHIN_S = 45.0  # the unit's TimeoutStartSec (60 s) covers it with room to spare
POLL_S = 0.25

INSTALLING = "installing"  # pip is changing the environment: a stop now leaves it half done
TRYING = "trying"  # the new release is on probation
ONLINE = "online"  # it came online: the update is done
ROLLED_BACK = "rolled_back"  # it did not: the previous release is back
ROLLBACK_FAILED = "rollback_failed"  # it did not, and the previous release could not return


def trial_dir(state_dir: Path) -> Path:
    """Where an install keeps its trial and the previous release's wheels."""
    return state_dir / "update"


def trial_path(state_dir: Path) -> Path:
    """The trial's file."""
    return trial_dir(state_dir) / "trial.json"


def read_trial(state_dir: Path) -> dict[str, Any] | None:
    """The trial, or None (none, or a file that is not one: it is then ignored)."""
    try:
        trial = json.loads(trial_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
    return trial if isinstance(trial, dict) and isinstance(trial.get("state"), str) else None


def write_trial(state_dir: Path, trial: dict[str, Any]) -> None:
    """Replace the trial in one step (a crash leaves the old file or the new one)."""
    path = trial_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    with part.open("w") as out:
        json.dump(trial, out)
        out.flush()
        os.fsync(out.fileno())
    part.replace(path)


def rollback(state_dir: Path, *, python: str = sys.executable) -> bool:
    """Reinstall what the trial replaced, from its own wheels (no index needed). True: done.

    Each wheel of the environment as it was; those whose version is installed are left alone.
    """
    wheels = sorted(str(w) for w in (trial_dir(state_dir) / "previous").glob("*.whl"))
    if not wheels:
        return False
    command = [
        *(python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"),
        *("--no-index", "--no-deps", *wheels),
    ]
    done = subprocess.run(command, check=False)  # noqa: S603 - our own pip
    return done.returncode == 0


def before(state_dir: Path) -> int:
    """ExecStartPre: count a start of the new release; roll back after too many."""
    trial = read_trial(state_dir)
    if trial is None or trial["state"] not in (INSTALLING, TRYING):
        return 0
    starts = int(trial.get("starts", 0)) + 1
    if trial["state"] == INSTALLING:
        why = f"the install of {trial.get('to')} was cut short"
    elif starts <= MAX_STARTS:
        write_trial(state_dir, {**trial, "starts": starts})
        return 0
    else:
        why = f"{trial.get('to')} did not come online in {MAX_STARTS} starts"
    print(f"legwave update: {why}: reinstalling {trial.get('from')}", file=sys.stderr)
    ok = rollback(state_dir)
    state = ROLLED_BACK if ok else ROLLBACK_FAILED
    write_trial(state_dir, {**trial, "starts": starts, "state": state, "reason": why})
    return 0


def after(state_dir: Path, *, within_s: float = ONLINE_WITHIN_S) -> int:
    """ExecStartPost: during a trial, wait for the new release to say it is online."""
    deadline = time.monotonic() + within_s
    while True:
        trial = read_trial(state_dir)
        if trial is None or trial["state"] != TRYING:
            return 0  # none, settled by the agent, or rolled back
        if time.monotonic() >= deadline:
            print(
                f"legwave update: {trial.get('to')} not online within {within_s:.0f} s",
                file=sys.stderr,
            )
            return 1
        time.sleep(POLL_S)


def main(argv: list[str]) -> int:
    """``before STATE_DIR`` or ``after STATE_DIR``."""
    if len(argv) != 2 or argv[0] not in ("before", "after"):
        print("usage: update_guard.py before|after STATE_DIR", file=sys.stderr)
        return 2
    state_dir = Path(argv[1])
    return before(state_dir) if argv[0] == "before" else after(state_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
