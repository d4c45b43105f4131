"""The worker loop: claim a batch, process it, repeat; sleep until NOTIFY, a due job or a poll.

`drain=True` ("burst" mode) processes until nothing is due, then returns: it makes tests
and one-shot runs deterministic.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from aoer import queue
from aoer.config import Settings
from aoer.constants import LEASE_RENEWALS_PER_LEASE
from aoer.queue.batches import BatchOutcome
from aoer.store import Store
from aoer.types import ClaimedJob
from aoer.worker.scheduler import ScheduledJob, run_scheduler
from aoer.worker.wakeup import listen_for_jobs

logger = logging.getLogger(__name__)

LISTEN_READY_S = 5.0  # how long to wait for LISTEN before claiming anyway (the poll covers)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerStats:
    batches: int = 0
    completed: int = 0
    failed: int = 0
    notifications: int = 0  # NOTIFYs that woke the worker


class Worker:
    """Runs `settings.worker_concurrency` claim/process slots over one store (lease and batch
    size come with the store's policy)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        drain: bool = False,
        scheduled: list[ScheduledJob] | None = None,
        worker_id: str | None = None,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.drain = drain
        self.scheduled = scheduled or []
        self.worker_id = worker_id or new_worker_id()
        self.stats = WorkerStats()
        self.on_batch = on_batch  # an observer (metrics) told of every processed batch
        self._stopping = asyncio.Event()
        self._wakeups = [asyncio.Event() for _ in range(settings.worker_concurrency)]
        self._sleeping = 0
        # Observable states (tests, `aoer up`): LISTEN is in place; every slot is asleep.
        self.listening = asyncio.Event()
        self.idle = asyncio.Event()
        self._in_hand: dict[UUID, ClaimedJob] = {}

    def stop(self) -> None:
        """Stop claiming; batches in hand finish, then `run` returns."""
        self._stopping.set()
        self._wake_all()

    def _wake_all(self) -> None:
        for event in self._wakeups:
            event.set()

    def _listener_woke(self, notified: bool) -> None:
        if notified:
            self.stats.notifications += 1
        self._wake_all()

    async def run(self) -> WorkerStats:
        logger.info(
            "[AOER] AOER Orchestrator worker active",
            extra={"worker_id": self.worker_id, "action": "start"},
        )
        helpers: list[asyncio.Task[None]] = []
        if not self.drain:
            helpers.append(
                asyncio.create_task(
                    listen_for_jobs(self.store, self._listener_woke, self.listening)
                )
            )
            helpers.append(asyncio.create_task(self._keep_leases()))
            if self.scheduled:
                helpers.append(
                    asyncio.create_task(
                        run_scheduler(self.store, self.scheduled, self.worker_id, self._stopping)
                    )
                )
            # Listen before the first claim so no NOTIFY falls between them.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.listening.wait(), LISTEN_READY_S)
        try:
            async with asyncio.TaskGroup() as group:
                for slot in range(self.settings.worker_concurrency):
                    group.create_task(self._slot(slot))
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        logger.info(
            "[AOER] Worker %s stopped: %d batches, %d completed, %d failed",
            self.worker_id,
            self.stats.batches,
            self.stats.completed,
            self.stats.failed,
        )
        return self.stats

    async def _slot(self, slot: int) -> None:
        wake = self._wakeups[slot]
        while not self._stopping.is_set():
            wake.clear()
            try:
                jobs = await self._claim()
                if jobs:
                    await self._process(jobs)
                    continue
                if self.drain:
                    return
                await self._sleep(wake)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A failing batch never stops the loop; its leases expire if it was lost.
                logger.exception("[AOER] worker slot %d error; retrying", slot)
                await self._sleep(wake, self.settings.poll_s)

    async def _claim(self) -> list[ClaimedJob]:
        async with self.store.session() as session:
            if self.drain:
                await queue.reclaim_expired(session)
            jobs = await session.jobs.claim(self.worker_id)
        for job in jobs:
            self._in_hand[job.id] = job
        return jobs

    async def _process(self, jobs: list[ClaimedJob]) -> None:
        try:
            async with self.store.session() as session:
                outcome = await queue.process_batch(session, self.worker_id, jobs)
        finally:
            for job in jobs:
                self._in_hand.pop(job.id, None)
        self.stats.batches += 1
        self.stats.completed += len(outcome.completed)
        self.stats.failed += len(outcome.failed)
        if self.on_batch is not None:
            self.on_batch(outcome)
        if self.settings.log_each_tenant:
            for done in outcome.completed:
                logger.info(
                    "[AOER] ✅ Completed recompute for tenant %s (%.0fms)",
                    done.tenant_id,
                    outcome.elapsed_ms,
                    extra={
                        "tenant_id": str(done.tenant_id),
                        "job_id": str(done.id),
                        "action": "complete",
                    },
                )
        elif outcome.completed:
            logger.info(
                "[AOER] ✅ Completed recompute for %d tenants in one batch (%.0fms)",
                len(outcome.completed),
                outcome.elapsed_ms,
                extra={"action": "complete"},
            )

    async def _sleep(self, wake: asyncio.Event, seconds: float | None = None) -> None:
        if seconds is None:
            seconds = await self._until_next_due()
        self._sleeping += 1
        if self._sleeping == len(self._wakeups):
            self.idle.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=seconds)
        finally:
            self._sleeping -= 1
            self.idle.clear()

    async def _until_next_due(self) -> float:
        async with self.store.session() as session:
            due_at = await session.jobs.next_due_at()
        if due_at is None:
            return self.settings.poll_s
        seconds = (due_at - datetime.now(UTC)).total_seconds()
        return min(max(seconds, 0.01), self.settings.poll_s)

    async def _keep_leases(self) -> None:
        """Renew the leases of jobs in hand and take back those of dead workers."""
        interval = self.store.policy.lease_s / LEASE_RENEWALS_PER_LEASE
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.store.session() as session:
                    held = list(self._in_hand)
                    kept = await session.jobs.renew(self.worker_id, held)
                    if len(kept) < len(held):
                        logger.warning("[AOER] lost the lease of %d jobs", len(held) - len(kept))
                    await queue.reclaim_expired(session)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("[AOER] lease keeper error")
