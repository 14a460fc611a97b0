"""Milliseconds for timings reported to people and benchmarks: one stopwatch instead of pairs of clock calls."""

from __future__ import annotations

import time


class Stopwatch:
    """Started when made. `lap()`: ms since the last lap (or the start); `total()`: ms since the start."""

    def __init__(self):
        self.started = self.marked = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self.marked = now - self.marked, now
        return round(elapsed * 1000, 1)

    def total(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)
