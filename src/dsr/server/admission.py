"""`Admission`: how many hybrid searches run at once, how many may wait, and the answer to the rest.

Each running search occupies a worker thread and sends its requests to the cluster (bounded in
total by `GatedBackend`); a search that finds every slot taken waits for one, on the event loop,
holding no thread. Waiting is bounded too: a search that would wait behind `queue` others is
refused at once with `EngineOverloaded`, which `dsr serve` answers as a 429 with Retry-After, as
Elasticsearch answers a full search queue, rather than letting callers time out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from dsr.errors import EngineOverloaded

RETRY_AFTER_S = 1


class Admission:
    """At most `running` searches at once and `queue` waiting; used from one event loop."""

    def __init__(self, running: int, queue: int) -> None:
        if running < 1 or queue < 0:
            raise ValueError(f"running must be >= 1 and queue >= 0, got {running} and {queue}")
        self.running = running
        self.queue = queue
        self.waiting = 0
        self._slots = asyncio.Semaphore(running)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block; raises `EngineOverloaded` when the queue is full."""
        if self._slots.locked():
            if self.waiting >= self.queue:
                raise EngineOverloaded(
                    f"rejected execution of a dsr search: {self.running} running and {self.waiting} queued "
                    f"(queue capacity {self.queue})", status=429, retry_after=RETRY_AFTER_S)
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()
