"""The numbers people track, on a calendar that is written down, not the machine's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from device.control.massager import SessionRecord
from device.settings import SessionSettings
from device.stats import ADHERENCE_DAYS, therapy_stats

AMS = ZoneInfo("Europe/Amsterdam")
# Wednesday 2 December 2026, 21:30 in Amsterdam (20:30 UTC)
NOW = datetime(2026, 12, 2, 21, 30, tzinfo=AMS)


def session(
    start: datetime,
    minutes: float,
    *,
    reason: str | None = "completed",
    planned: int = 20,
    preset: str | None = None,
    peak: float = 0.0,
) -> SessionRecord:
    settings = SessionSettings(duration_min=planned, preset=preset)
    return SessionRecord(
        id=f"s-{start.isoformat()}",
        started_at=start.astimezone(UTC),
        settings=settings,
        ended_at=None if reason is None else (start + timedelta(minutes=minutes)).astimezone(UTC),
        end_reason=reason,
        running_s=60.0 * minutes,
        peak_mmhg=peak,
    )


def days_ago(n: int, hour: int = 21) -> datetime:
    return (NOW - timedelta(days=n)).replace(hour=hour, minute=0)


def test_nothing_yet() -> None:
    stats = therapy_stats([], NOW)
    assert stats.payload() == {
        "day": "2026-12-02",
        "minutes_today": 0.0,
        "minutes_7d": 0.0,
        "sessions_week": 0,
        "streak_days": 0,
        "adherence_pct": 0,
        "last_session": None,
    }


def test_minutes_today_and_the_last_seven_days_count_by_the_local_start_day() -> None:
    history = [
        session(days_ago(0, hour=8), 20),
        session(
            days_ago(0, hour=0).replace(minute=30), 10
        ),  # 00:30 local is 23:30 UTC the day before
        session(days_ago(6), 15),
        session(days_ago(7), 40),  # eight days ago counting today: outside the week
        session(days_ago(1, hour=23).replace(minute=50), 30),  # began yesterday, ran past midnight
    ]
    stats = therapy_stats(history, NOW)
    assert stats.minutes_today == 30.0
    assert stats.minutes_7d == 75.0


def test_the_running_session_counts_its_minutes_so_far() -> None:
    running = session(NOW - timedelta(minutes=12), 12, reason=None)
    stats = therapy_stats([session(days_ago(0, hour=7), 20), running], NOW)
    assert stats.minutes_today == 32.0
    assert stats.last is not None and stats.last.end_reason == "completed"  # not the running one


def test_sessions_this_week_begin_on_monday() -> None:
    monday = days_ago(2, hour=9)  # Monday 30 November
    sunday = days_ago(3, hour=22)  # Sunday 29 November: last week
    stats = therapy_stats([session(sunday, 20), session(monday, 20), session(NOW, 5)], NOW)
    assert monday.strftime("%A") == "Monday" and sunday.strftime("%A") == "Sunday"
    assert stats.sessions_week == 2


@pytest.mark.parametrize(
    ("completed_days_ago", "streak"),
    [
        ([0, 1, 2], 3),
        ([1, 2], 2),  # today is not over: yesterday's streak still stands
        ([0, 2, 3], 1),  # a gap ends it
        ([2, 3], 0),
    ],
)
def test_the_streak_counts_days_in_a_row_with_a_completed_session(
    completed_days_ago: list[int], streak: int
) -> None:
    history = [session(days_ago(n), 20) for n in completed_days_ago]
    history.append(session(days_ago(1, hour=7), 3, reason="stopped"))  # stopped counts no day
    assert therapy_stats(history, NOW).streak_days == streak


def test_adherence_is_the_share_of_the_last_30_days_with_a_completed_session() -> None:
    history = [session(days_ago(n), 20) for n in range(0, 40, 2)]  # every other day, 40 days
    history += [session(days_ago(n, hour=8), 20) for n in range(0, 6, 2)]  # twice on some days
    history.append(session(days_ago(1), 5, reason="stopped"))
    stats = therapy_stats(history, NOW)
    assert stats.adherence_pct == pytest.approx(100.0 * 15 / ADHERENCE_DAYS)
    assert stats.payload()["adherence_pct"] == 50


def test_the_last_session_says_how_it_ended_with_what_it_did() -> None:
    older = session(days_ago(1), 20, preset="bedtime", peak=44.2)
    last = session(days_ago(0, hour=19), 7.5, reason="fault:inflate_timeout", peak=31.06)
    stats = therapy_stats([last, older], NOW)  # any order
    assert stats.payload()["last_session"] == {
        "end_reason": "fault:inflate_timeout",
        "preset": None,
        "minutes": 7.5,
        "planned_minutes": 20,
        "peak_mmhg": 31.1,
        "started_at": "2026-12-02T18:00:00+00:00",
        "ended_at": "2026-12-02T18:07:30+00:00",
    }
