"""Suite-wide fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import coverage
import pytest


@pytest.fixture(autouse=True)
def _untraced(request: pytest.FixtureRequest) -> Iterator[None]:
    """Pause coverage for tests marked `untraced`.

    They replay many minutes of simulated time; tracing makes them three to four times slower
    on Python 3.11 and adds no line that the rest of the suite does not already reach (checked:
    the total is the same with and without them traced; CONTRIBUTING.md says how).
    `LEGWAVE_TRACE_ALL=1` traces them too.
    """
    marked = request.node.get_closest_marker("untraced") is not None
    trace_all = os.environ.get("LEGWAVE_TRACE_ALL") == "1"
    cov = coverage.Coverage.current() if marked and not trace_all else None
    if cov is None:
        yield
        return
    cov.stop()
    try:
        yield
    finally:
        cov.start()
