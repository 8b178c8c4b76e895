"""`Timings`: milliseconds per pipeline stage, reported with every result (`ext.dsr.timings_ms`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings:
    """Wall time per stage name; a stage that runs more than once (a re-fusion) adds up.

    The term side times itself on the searcher's thread pool while the main thread times the other
    stages; each stage name is written by one thread only.
    """

    def __init__(self, *always: str) -> None:
        self._ms: dict[str, float] = dict.fromkeys(always, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - t0) * 1000.0)

    def add(self, name: str, ms: float) -> None:
        self._ms[name] = self._ms.get(name, 0.0) + ms

    def as_dict(self) -> dict[str, float]:
        return {name: round(ms, 3) for name, ms in self._ms.items()}
