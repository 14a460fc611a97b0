"""pyapp.stopwatch: laps and totals in milliseconds."""

from __future__ import annotations

import time

from pyapp.stopwatch import Stopwatch


def test_laps_add_up_to_the_total():
    clock = Stopwatch()
    time.sleep(0.02)
    first = clock.lap()
    time.sleep(0.01)
    second = clock.lap()
    total = clock.total()
    assert first >= 19 and second >= 9 and abs(total - first - second) <= 0.3
