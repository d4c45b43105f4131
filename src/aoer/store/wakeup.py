"""Coalesced queue wake-ups (issue 16), sent after the enqueue has committed.

PostgreSQL serialises the commits of every transaction that sent a NOTIFY (a database-wide
lock held until the commit is durable), so a NOTIFY inside each enqueue made enqueues queue
behind each other's and the workers' commits: 3-5x fewer enqueues a second
(bench/notify_bench.py). A process's enqueues instead ask its `Waker`, which sends one NOTIFY
at a time in a transaction of its own: however many enqueues commit while one is in flight,
they are covered by the next one. Urgent enqueues still NOTIFY in their own transaction (the
fastest wake-up, and rare); a lost wake-up is covered by the workers' safety poll.
"""

import asyncio
import logging

from aoer.constants import QUEUE_CHANNEL
from aoer.db.pool import Pool
from aoer.db.queries import query
from aoer.store.errors import translated

logger = logging.getLogger(__name__)


class Waker:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._pending: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0  # notifications sent (tests, benchmarks)

    def wake(self, payload: str) -> None:
        """Ask for a NOTIFY soon; call it after the enqueue committed."""
        self._pending = payload
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._pending is not None:
            payload, self._pending = self._pending, None
            try:
                with translated():
                    # One autocommitted statement, its NOTIFY sent as it commits: one round
                    # trip. BEGIN, the NOTIFY and COMMIT each waited for a turn of a busy
                    # event loop, holding a pooled connection for ~100 ms a wake-up that
                    # the API's enqueues and cache misses waited for (bench/README.md).
                    async with self._pool.connection() as conn:
                        params = {"channel": QUEUE_CHANNEL, "payload": payload}
                        await conn.execute(query("notify_queue"), params)
                self.sent += 1
            except Exception as exc:  # the workers' safety poll finds the job anyway
                logger.warning("could not wake the workers (%s); they will poll", exc)

    async def flush(self) -> None:
        """Wait until the requested wake-ups are sent (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
