"""The connection pool, timed: how long requests wait to get a database connection.

Under load the pool is where a slow database shows first: every request that needs a connection
queues for one. ``TimedQueuePool`` adds up that wait (a free connection, or a new one being
opened) so that ``GET /metrics`` can report it and the benchmark can print it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry


@dataclass
class PoolWaitStats:
    checkouts: int = 0
    wait_seconds: float = 0.0
    max_wait_seconds: float = 0.0

    def record(self, seconds: float) -> None:
        self.checkouts += 1
        self.wait_seconds += seconds
        self.max_wait_seconds = max(self.max_wait_seconds, seconds)


class TimedQueuePool(AsyncAdaptedQueuePool):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wait_stats = PoolWaitStats()

    def _do_get(self) -> ConnectionPoolEntry:
        started = time.perf_counter()
        try:
            return super()._do_get()
        finally:
            self.wait_stats.record(time.perf_counter() - started)
