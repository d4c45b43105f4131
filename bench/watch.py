"""Watch summaries commit: LISTEN on `aoer_summary_updated`, which workers NOTIFY inside the
batch transaction, so a notification arrives exactly when its summaries are committed."""

import asyncio
import contextlib
import time
from uuid import UUID

from aoer.constants import SUMMARY_CHANNEL
from aoer.db.pool import Connection, connect


class SummaryWatcher:
    """Counts committed tenant ids and wakes whoever waits for one of them."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}  # tenant id → perf_counter of its commit notice
        self.last_commit_at = 0.0  # perf_counter of the latest notification
        self._conn: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self, url: str) -> None:
        self._conn = await connect(url)
        await self._conn.execute(f"LISTEN {SUMMARY_CHANNEL}")
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        assert self._conn is not None
        async for note in self._conn.notifies():
            self.last_commit_at = time.perf_counter()
            self.seen.update(dict.fromkeys(note.payload.split(","), self.last_commit_at))
            self._changed.set()

    def forget(self) -> None:
        self.seen.clear()
        self.last_commit_at = 0.0

    async def wait_for(self, tenant_id: UUID, timeout_s: float) -> float:
        """perf_counter at which `tenant_id`'s summary was committed."""
        key = str(tenant_id)
        async with asyncio.timeout(timeout_s):
            while key not in self.seen:
                self._changed.clear()
                await self._changed.wait()
        return self.seen[key]

    async def wait_count(self, count: int, timeout_s: float) -> float:
        async with asyncio.timeout(timeout_s):
            while len(self.seen) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.last_commit_at

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn:
            await self._conn.close()
