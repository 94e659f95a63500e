"""The device's memory: atomic writes, restore after a restart, and what a broken file does."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from device.control.massager import Action, Status
from device.harness import SimulatedDevice as Rig
from device.settings import SessionSettings
from device.store import FILENAME, Memory, Store, restore


def test_a_roundtrip_keeps_everything(tmp_path: Path) -> None:
    rig = Rig(SessionSettings(intensity=5, preset=None, heat="low"))
    rig.start()
    rig.run(30)
    rig.send(Action.STOP)
    rig.send(Action.START)
    rig.run(10)
    store = Store(tmp_path)
    memory = Memory.of(rig.massager)
    store.save(memory)
    back = Store(tmp_path).load()
    assert back == memory
    assert back.settings.intensity == 5
    assert [e.end_reason for e in back.history] == ["stopped"]
    assert back.active is not None and back.active.id == rig.massager.session.id  # type: ignore[union-attr]


def test_restore_records_the_running_session_as_interrupted(tmp_path: Path) -> None:
    before = Rig(SessionSettings(intensity=4, duration_min=10))
    before.start()
    before.run(60)
    memory = Memory.of(before.massager)
    assert memory.active is not None

    after = Rig()  # a fresh process: defaults
    restore(after.massager, memory, now=after.now)
    m = after.massager
    assert m.settings.intensity == 4 and m.settings.duration_min == 10
    assert m.status is Status.IDLE  # nothing starts by itself
    last = m.history[-1]
    assert (last.id, last.end_reason) == (memory.active.id, "interrupted")
    assert last.running_s == pytest.approx(memory.active.running_s)
    assert m.therapy_s_total == pytest.approx(memory.therapy_s_total + last.running_s)
    events = m.drain_events()
    assert [(e.event_type, e.data["end_reason"], e.session_id) for e in events] == [
        ("session_stopped", "interrupted", memory.active.id)
    ]
    # and the next memory no longer has a session in progress
    assert Memory.of(m).active is None


def test_settings_that_no_longer_fit_the_device_fall_back(tmp_path: Path) -> None:
    memory = Memory(settings=SessionSettings(zone_boost="thigh"), sessions_completed=3)
    rig = Rig()
    restore(rig.massager, memory, now=rig.now)
    assert rig.massager.settings.zone_boost == "none"
    assert rig.massager.sessions_completed == 3


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"version": 2}',
        '{"sessions_completed": -1}',
        "\0\0\0",
        '{"therapy_s_total": Infinity}',  # json reads it; no memory may hold it
        '{"therapy_s_total": 1e400}',
        '{"history": [{"id": "a", "started_at": "2026-01-01T00:00:00Z", "running_s": NaN}]}',
    ],
)
def test_a_broken_file_is_moved_aside_and_defaults_are_used(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILENAME).write_text(text)
    assert Store(tmp_path).load() == Memory()
    aside = list(tmp_path.glob(f"{FILENAME}.broken-*"))
    assert len(aside) == 1 and aside[0].read_text() == text  # kept for a person to look at
    assert "started from defaults" in caplog.text


def test_a_file_that_is_not_utf8_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    junk = b'{"sessions_completed": 3, "x": "\xff\xfe"}'
    (tmp_path / FILENAME).write_bytes(junk)
    assert Store(tmp_path).load() == Memory()
    aside = list(tmp_path.glob(f"{FILENAME}.broken-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == junk
    assert "not UTF-8" in caplog.text


def test_a_file_that_cannot_be_read_is_moved_aside_not_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / FILENAME
    path.symlink_to(FILENAME)  # a link to itself: reading it fails, as with its permissions
    store = Store(tmp_path)
    assert store.load() == Memory()
    assert [p.name for p in tmp_path.glob(f"{FILENAME}.unreadable-*")] != []
    assert "cannot read it" in caplog.text
    store.save(Memory(sessions_completed=1))
    assert Store(tmp_path).load().sessions_completed == 1


def test_a_missing_file_is_a_first_start(tmp_path: Path) -> None:
    assert Store(tmp_path / "new").load() == Memory()


def test_the_writer_thread_writes_the_newest_and_flushes_on_close(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for n in range(50):
        store.save_soon(Memory(sessions_completed=n))
    store.close()
    assert Store(tmp_path).load().sessions_completed == 49
    assert 1 <= store.writes <= 50


def test_every_store_of_a_process_shares_one_writer_thread(tmp_path: Path) -> None:
    # A fleet of devices in one process must not run a writer thread each (they contend with
    # the control loops for the interpreter): one thread writes them all, none is lost.
    stores = [Store(tmp_path / f"device{i}") for i in range(20)]
    for round_ in range(3):
        for i, store in enumerate(stores):
            store.save_soon(Memory(sessions_completed=100 * round_ + i))
    writers = [t for t in threading.enumerate() if t.name == "legwave-memory"]
    for store in stores:
        store.close()
    assert len(writers) == 1
    for i in range(20):
        assert Store(tmp_path / f"device{i}").load().sessions_completed == 200 + i


def test_a_forked_child_gets_a_writer_of_its_own(tmp_path: Path) -> None:
    parent = Store(tmp_path / "parent")
    parent.save_soon(Memory(sessions_completed=1))
    parent.close()  # the parent's writer thread is running now; a child does not inherit it
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        child = Store(tmp_path / "child")
        child.save_soon(Memory(sessions_completed=2))
        child.close()
        os._exit(0 if child.writes == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert Store(tmp_path / "child").load().sessions_completed == 2


def test_a_failed_write_is_counted_and_the_writer_goes_on(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state directory should be")
    bad, good = Store(blocked), Store(tmp_path / "ok")
    bad.save_soon(Memory(sessions_completed=1))
    good.save_soon(Memory(sessions_completed=2))
    bad.close()
    good.close()
    assert bad.failures == 1 and bad.writes == 0
    assert Store(tmp_path / "ok").load().sessions_completed == 2


WRITER = """
import sys
from pathlib import Path
from device.store import Memory, SessionEntry, Store
from datetime import datetime, UTC
store = Store(Path(sys.argv[1]))
history = [SessionEntry(id=f"s{i}", started_at=datetime.now(UTC)) for i in range(100)]
n = int(sys.argv[2]) + 1
store.save(Memory(sessions_completed=n, history=history))
print("ready", flush=True)  # one whole write done: a kill from now on lands on or between writes
while True:
    n += 1
    store.save(Memory(sessions_completed=n, history=history))
"""


def test_kill_9_during_writes_never_leaves_an_unreadable_memory(tmp_path: Path) -> None:
    rng = random.Random(7)
    last = 0
    kills = 0
    for _ in range(30):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(last)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.005, 0.05))  # somewhere inside a write, most of the time
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        kills += 1
        memory = Store(tmp_path).load()  # never the defaults: the file is always whole
        assert memory.sessions_completed >= last
        assert len(memory.history) == 100
        last = memory.sessions_completed
        assert not list(tmp_path.glob(f"{FILENAME}.broken-*"))
        assert not list(tmp_path.glob(f".{FILENAME}.*"))  # load() cleared cut-off temp files
    assert kills == 30 and last >= 30  # it wrote in every round, however loaded the machine


@pytest.mark.parametrize(
    ("count", "age_days", "kept"),
    [
        (150, 40, 100),  # old sessions: the last hundred
        (150, 20, 150),  # all of the last 35 days, for the 30-day numbers
        (600, 20, 500),  # but never more than 500
    ],
)
def test_the_memory_keeps_the_last_hundred_or_every_session_of_35_days(
    tmp_path: Path, count: int, age_days: int, kept: int
) -> None:
    from datetime import UTC, datetime, timedelta

    from device.control.massager import SessionRecord
    from device.settings import SessionSettings
    from device.store import kept_history

    start = datetime.now(UTC) - timedelta(days=age_days)
    history = [
        SessionRecord(
            id=str(i), started_at=start + timedelta(minutes=i), settings=SessionSettings()
        )
        for i in range(count)
    ]
    assert [r.id for r in kept_history(history)] == [r.id for r in history[-kept:]]
