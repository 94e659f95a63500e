"""Suite-wide fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import coverage
import pytest

UNTRACED_FOLDERS = ("faults", "integration", "deploy")
"""Whole folders that run untraced: coverage counts the unit suites. The integration, fault and
deploy suites keep real agents, brokers and installs busy for seconds per test; tracing them on
Python 3.11 (no sys.monitoring) took the whole run from 3 min 56 s to 4 min 45 s on 2 cores,
past the suite's 4 minutes. With them traced the total is 91 %; without, 83 %."""


LONG_FIRST = (
    "test_setting_changes.py",
    "test_link_faults.py",
    "test_session_on_lines.py",
    "test_hostile_input.py",
    "test_pi_install.py",
    "test_readme.py",
    "test_update_install.py",
    "test_sentences_languages.py",
    "test_tls.py",
)
"""Modules with tests of 15 s and more (`--durations`), handed out first: a long test handed
out last keeps one worker busy after the others are done."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of an untraced folder `untraced`; the longest modules go first."""
    for item in items:
        if item.path.parent.name in UNTRACED_FOLDERS:
            item.add_marker(pytest.mark.untraced)
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(autouse=True)
def _untraced(request: pytest.FixtureRequest) -> Iterator[None]:
    """Pause coverage for tests marked `untraced`.

    They replay many minutes of simulated time; tracing makes them three to four times slower
    on Python 3.11 and adds no line that the traced tests do not already reach (checked with
    per-test coverage contexts).
    `LEGWAVE_TRACE_ALL=1` traces them too.
    """
    marked = request.node.get_closest_marker("untraced") is not None
    if not marked or os.environ.get("LEGWAVE_TRACE_ALL") == "1":
        yield
        return
    # Stop every started instance, not only the newest: an xdist worker runs two, and stopping
    # the newest alone resumes the one beneath it (the test would still be traced).
    stopped: list[coverage.Coverage] = []
    while (cov := coverage.Coverage.current()) is not None:
        cov.stop()
        stopped.append(cov)
    try:
        yield
    finally:
        for cov in reversed(stopped):
            cov.start()
