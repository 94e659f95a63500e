"""The numbers people track from their sessions: minutes, sessions, streak, adherence.

Computed from the session history the device keeps (device/store.py) at a local time `now`:
a session counts on the local day it started. A *completed* session is one that ran its whole
planned length (`end_reason == "completed"`); the streak and the adherence count days with one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from device.control.massager import SessionRecord

ADHERENCE_DAYS = 30
KEEP_DAYS = ADHERENCE_DAYS + 5
"""Sessions younger than this stay in the history, whatever their number (device/store.py)."""


@dataclass(frozen=True, slots=True)
class TherapyStats:
    """What `…/stats` carries (docs/mqtt.md)."""

    day: date
    minutes_today: float
    minutes_7d: float
    sessions_week: int
    streak_days: int
    adherence_pct: float
    last: SessionRecord | None

    def payload(self) -> dict[str, Any]:
        """The JSON object of `…/stats`."""
        last = self.last
        return {
            "day": self.day.isoformat(),
            "minutes_today": round(self.minutes_today, 1),
            "minutes_7d": round(self.minutes_7d, 1),
            "sessions_week": self.sessions_week,
            "streak_days": self.streak_days,
            "adherence_pct": round(self.adherence_pct),
            "last_session": None
            if last is None
            else {
                "end_reason": last.end_reason,
                "preset": last.settings.preset,
                "minutes": round(last.running_s / 60.0, 1),
                "planned_minutes": last.settings.duration_min,
                "peak_mmhg": round(last.peak_mmhg, 1),
                "started_at": last.started_at.isoformat(),
                "ended_at": None if last.ended_at is None else last.ended_at.isoformat(),
            },
        }


def therapy_stats(sessions: Iterable[SessionRecord], now: datetime) -> TherapyStats:
    """The numbers at `now` (an aware local time) from `sessions` (past and current, any order).

    Args:
        sessions: the history, and the session running now if there is one.
        now: the local time; its date is "today", and weeks begin on Monday.
    """
    tz = now.tzinfo
    today = now.date()
    week_start = today - timedelta(days=today.weekday())
    minutes_today = minutes_7d = 0.0
    sessions_week = 0
    completed_days: set[date] = set()
    ended: list[SessionRecord] = []
    for s in sessions:
        day = s.started_at.astimezone(tz).date()
        minutes = s.running_s / 60.0
        if day == today:
            minutes_today += minutes
        if today - timedelta(days=6) <= day <= today:
            minutes_7d += minutes
        if week_start <= day <= today:
            sessions_week += 1
        if s.end_reason == "completed":
            completed_days.add(day)
        if s.end_reason is not None:
            ended.append(s)
    streak = 0
    day = today if today in completed_days else today - timedelta(days=1)
    while day in completed_days:
        streak += 1
        day -= timedelta(days=1)
    window = {today - timedelta(days=k) for k in range(ADHERENCE_DAYS)}
    adherence = 100.0 * len(window & completed_days) / ADHERENCE_DAYS
    last = max(ended, key=lambda s: s.ended_at or s.started_at, default=None)
    return TherapyStats(
        day=today,
        minutes_today=minutes_today,
        minutes_7d=minutes_7d,
        sessions_week=sessions_week,
        streak_days=streak,
        adherence_pct=adherence,
        last=last,
    )
