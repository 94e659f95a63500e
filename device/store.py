"""What survives a restart: last settings, counters, session history, the session in progress.

One JSON file in the state directory, replaced atomically (temporary file, fsync, rename, fsync of
the directory): a crash or a power cut leaves the old file or the new one, never a torn one.
Writes happen in the process's one writer thread, the newest memory only, so the control tick
never waits for the SD card. A file that cannot be read, decoded or understood (its permissions,
edited by hand, a disk error) is moved aside and the device starts from defaults, saying so in
the log: it never refuses to start over its memory, and never overwrites a file it could not
read.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from device.calibration import Calibration
from device.control.massager import SessionRecord
from device.settings import SessionSettings
from device.stats import KEEP_DAYS

if TYPE_CHECKING:
    from device.control.massager import Massager

log = logging.getLogger(__name__)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a crash leaves the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


FILENAME = "memory.json"
HISTORY = 100
"""Sessions kept at least; more while they are younger than `KEEP_DAYS` (the 30-day numbers)."""
HISTORY_MAX = 500
LOCKNAME = "agent.lock"


class StateDirectoryInUseError(RuntimeError):
    """Another agent runs with this state directory (the same device, twice)."""


def claim(folder: Path) -> TextIO:
    """Hold the state directory for this process; the lock goes with the process.

    Two agents with one state directory would be one device twice: both would answer every
    command and write one memory file.

    Raises:
        StateDirectoryInUseError: another live process holds it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCKNAME
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise StateDirectoryInUseError(
            f"another legwave agent (pid {pid}) is running with the state directory {folder}: "
            "one device cannot run twice"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class SessionEntry(BaseModel):
    """One past (or the current) session."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    id: str
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    running_s: float = Field(0.0, ge=0)
    cycles: int = Field(0, ge=0)
    peak_mmhg: float = Field(0.0, ge=0)
    settings: SessionSettings = SessionSettings()

    def record(self) -> SessionRecord:
        """Back to the massager's session record."""
        return SessionRecord(
            id=self.id,
            started_at=self.started_at,
            settings=self.settings,
            ended_at=self.ended_at,
            end_reason=self.end_reason,
            running_s=self.running_s,
            cycles=self.cycles,
            peak_mmhg=self.peak_mmhg,
        )

    @classmethod
    def of(cls, record: SessionRecord) -> SessionEntry:
        """The entry for a massager's session record."""
        return cls(
            id=record.id,
            started_at=record.started_at,
            ended_at=record.ended_at,
            end_reason=record.end_reason,
            running_s=round(record.running_s, 1),
            cycles=record.cycles,
            peak_mmhg=round(record.peak_mmhg, 1),
            settings=record.settings,
        )


class Memory(BaseModel):
    """The device's memory as written to disk."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    version: Literal[1] = 1
    saved_at: datetime | None = None
    settings: SessionSettings = SessionSettings()
    sessions_completed: int = Field(0, ge=0)
    therapy_s_total: float = Field(0.0, ge=0)
    active: SessionEntry | None = None
    history: list[SessionEntry] = Field(default_factory=list)
    selftest: dict[str, Any] | None = None
    """The last self-test's report (with the wiring it tested)."""

    @classmethod
    def of(cls, massager: Massager) -> Memory:
        """What `massager` should remember now."""
        from device.control.massager import ACTIVE

        session = massager.session
        active = None
        if session is not None and session.end_reason is None and massager.status in ACTIVE:
            active = SessionEntry.of(session)
        return cls(
            saved_at=datetime.now(UTC),
            settings=massager.settings,
            sessions_completed=massager.sessions_completed,
            therapy_s_total=round(massager.therapy_s_total, 1),
            active=active,
            history=[SessionEntry.of(r) for r in kept_history(massager.history)],
            selftest=massager.selftest_record,
        )


def kept_history(history: list[SessionRecord]) -> list[SessionRecord]:
    """The sessions to remember: the last `HISTORY`, or every one of the last `KEEP_DAYS`."""
    cutoff = datetime.now(UTC) - timedelta(days=KEEP_DAYS)
    recent = sum(1 for r in history if r.started_at >= cutoff)
    return history[-min(max(HISTORY, recent), HISTORY_MAX) :]


def restore(massager: Massager, memory: Memory, *, now: float) -> None:
    """Give `massager` back what `memory` holds; a session it was running is interrupted."""
    interrupted = None
    if memory.active is not None:
        interrupted = memory.active.record()
        interrupted.ended_at = memory.saved_at or datetime.now(UTC)
        log.warning(
            "session %s was running when the agent stopped (%.0f s in): recorded as interrupted",
            interrupted.id,
            interrupted.running_s,
        )
    massager.restore(
        settings=memory.settings,
        sessions_completed=memory.sessions_completed,
        therapy_s_total=memory.therapy_s_total,
        history=[entry.record() for entry in memory.history],
        interrupted=interrupted,
        now=now,
    )
    massager.selftest_record = memory.selftest


class _Writer:
    """The one thread of a process that writes memory files, one at a time, oldest request first.

    One thread serves every store: a process simulating a fleet of devices would otherwise run a
    hundred writers, and a hundred threads contending for the interpreter stalled the control
    loops that share it for over a period when the devices changed state together.
    """

    def __init__(self) -> None:
        self._reset()
        # A forked child has none of its parent's threads: it starts a writer of its own.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Condition()
        self._pending: dict[Store, Memory] = {}  # a newer memory replaces one not yet written
        self._writing: Store | None = None
        self._thread: threading.Thread | None = None

    def submit(self, store: Store, memory: Memory) -> None:
        with self._lock:
            self._pending[store] = memory
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write_loop, name="legwave-memory", daemon=True
                )
                self._thread.start()
            self._lock.notify_all()

    def flush(self, store: Store, timeout: float) -> bool:
        """Wait until nothing of `store` is pending or being written; False on timeout."""
        with self._lock:
            return self._lock.wait_for(
                lambda: store not in self._pending and self._writing is not store, timeout
            )

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._lock.wait()
                store = next(iter(self._pending))
                memory = self._pending.pop(store)
                self._writing = store
            try:
                store.write(memory)
            finally:
                with self._lock:
                    self._writing = None
                    self._lock.notify_all()


_WRITER = _Writer()


class Store:
    """The memory file in `folder`, written by the process's writer thread.

    Args:
        folder: the state directory.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILENAME
        self.writes = 0
        self.failures = 0
        self.blocked: str | None = None  # why nothing may be written (a file kept in place)

    def load(self) -> Memory:
        """The memory on disk; defaults when there is none or it cannot be used.

        A file that cannot be read (its permissions), decoded (not UTF-8) or understood (not
        JSON, not a memory, a number JSON does not have) is moved aside for a person to look
        at, never overwritten: the log says where it went.
        """
        for stale in self.path.parent.glob(f".{FILENAME}.*"):  # a write that was cut off
            stale.unlink(missing_ok=True)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Memory()
        except OSError as exc:
            return self._set_aside("unreadable", f"cannot read it: {exc.strerror or exc}")
        try:
            return Memory.model_validate(json.loads(raw.decode()))
        except UnicodeDecodeError as exc:
            return self._set_aside("broken", f"it is not UTF-8 text ({exc.reason})")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'the file'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            return self._set_aside("broken", problems)
        except ValueError as exc:
            return self._set_aside("broken", f"not JSON: {exc}")

    def _set_aside(self, why: str, problem: str) -> Memory:
        aside = self.path.with_name(f"{FILENAME}.{why}-{int(time.time())}")
        try:
            self.path.replace(aside)
        except OSError as exc:
            # It cannot be moved: then it must not be replaced either.
            self.blocked = f"{self.path} could not be moved aside ({exc.strerror or exc})"
            log.error(
                "%s is not a usable legwave memory (%s) and %s: starting from defaults and "
                "writing nothing until it is fixed",
                self.path,
                problem,
                self.blocked,
            )
            return Memory()
        log.error(
            "%s is not a usable legwave memory (%s); moved it to %s and started from defaults",
            self.path,
            problem,
            aside.name,
        )
        return Memory()

    def save(self, memory: Memory) -> None:
        """Write `memory` now (atomically)."""
        write_atomic(self.path, memory.model_dump_json(indent=1) + "\n")
        self.writes += 1

    def save_soon(self, memory: Memory) -> None:
        """Hand `memory` to the writer thread; a newer one replaces one not yet written."""
        _WRITER.submit(self, memory)

    def write(self, memory: Memory) -> None:
        """Write `memory` now, counting and logging a failure instead of raising it."""
        if self.blocked is not None:
            self.failures += 1
            return
        try:
            self.save(memory)
        except OSError as exc:
            self.failures += 1
            if self.failures == 1 or self.failures % 100 == 0:
                log.error("cannot write %s (%d failures): %s", self.path, self.failures, exc)

    def close(self) -> None:
        """Return once what was handed to the writer is on disk (or failed)."""
        if not _WRITER.flush(self, 10.0):
            log.error("%s: the memory was not written within 10 s", self.path)


CALIBRATION = "calibration.json"


class CalibrationFileError(ValueError):
    """The calibration file cannot be used; the message says why and where it is."""


def load_calibration(folder: Path) -> Calibration:
    """The pressure calibration in `folder`; an empty one when there is none.

    Raises:
        CalibrationFileError: it cannot be read, or is not a calibration.
    """
    path = folder / CALIBRATION
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Calibration()
    except OSError as exc:
        raise CalibrationFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return Calibration.model_validate(json.loads(raw.decode()))
    except (UnicodeDecodeError, ValueError) as exc:  # ValidationError is a ValueError
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CalibrationFileError(
            f"{path} is not a legwave calibration ({first}): run legwave calibrate again"
        ) from None


def save_calibration(folder: Path, calibration: Calibration) -> None:
    """Write `calibration` into `folder`, atomically."""
    write_atomic(folder / CALIBRATION, calibration.model_dump_json(indent=1) + "\n")
