"""The `untraced` mark really stops coverage's tracer (under xdist a worker runs two)."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.mark.untraced
def test_an_untraced_test_runs_without_a_tracer() -> None:
    assert sys.gettrace() is None or os.environ.get("LEGWAVE_TRACE_ALL") == "1"
