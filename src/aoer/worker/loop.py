"""The worker loop: claim a batch, process it, repeat; sleep until NOTIFY, a due job or a poll.

`AOER_WORKER_CONCURRENCY` slots claim and process batches side by side; when the setting is
not given and the database shares the worker's host, the live workers share its cores and
a worker may keep fewer of its slots busy (worker/slots.py). With
`AOER_URGENT_LANE` (the default) one more slot, the urgent lane, claims urgent jobs only and
is woken by urgent enqueues alone: while every other slot works through a backlog's full
batches, an urgent recompute is claimed at once instead of after the batch in hand
(bench/README.md, "urgent behind the backlog").

`drain=True` ("burst" mode) processes until nothing is due, then returns: it makes tests
and one-shot runs deterministic. The urgent lane runs until the other slots are done.
"""

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from aoer import queue
from aoer.alerts.delivery import Deliverer
from aoer.config import Settings
from aoer.constants import (
    LEASE_CHECK_MAX_S,
    LEASE_RENEWALS_PER_LEASE,
    QUEUE_SETTLED,
    URGENT_LANE_BATCH,
    WORKER_HEARTBEAT_S,
    WORKER_STALE_S,
)
from aoer.errors import ConcurrencyConflict, DatabaseError, TransientDatabaseError
from aoer.queue.batches import BatchOutcome
from aoer.store import Store
from aoer.store.console import Heartbeat, LockWait, lock_wait_place
from aoer.types import ClaimedJob, Priority
from aoer.waiting import cancel_all, wait_set
from aoer.wording import plural
from aoer.worker.scheduler import ScheduledJob, run_scheduler
from aoer.worker.slots import batch_slots, host_cores
from aoer.worker.wakeup import listen_for_jobs

logger = logging.getLogger(__name__)

LISTEN_READY_S = 5.0  # how long to wait for LISTEN before claiming anyway (the poll covers)
RETRY_FIRST_S = 0.1  # first pause after a passing database error; doubles per retry
RETRY_MAX_S = 5.0  # longest pause between retries
LOCK_WAIT_LOOKUP_S = 1.0  # how long naming a lock's holders may wait for a connection
# Conflicts (timeouts, deadlocks) of one batch before its next try isolates the tenants they
# keep happening on (queue/batches.py).
CONFLICTS_BEFORE_ISOLATING = 3
# A stopping worker waits this long for a pooled connection to remove its row: with the
# database gone, the pool's own 30 s wait kept `aoer up` from exiting (CI, under load).
DEREGISTER_WAIT_S = 1.0


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerStats:
    batches: int = 0
    completed: int = 0
    failed: int = 0
    notifications: int = 0  # NOTIFYs that woke the worker


@dataclass(frozen=True, slots=True)
class _Lane:
    """What a slot claims: jobs of `min_priority` or above, up to `limit` (None: the batch
    size) at a time."""

    min_priority: Priority = "low"
    limit: int | None = None


URGENT_LANE = _Lane("urgent", URGENT_LANE_BATCH)


class Worker:
    """Runs `settings.worker_concurrency` claim/process slots, and the urgent lane, over one
    store (lease and batch size come with the store's policy)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        drain: bool = False,
        scheduled: list[ScheduledJob] | None = None,
        worker_id: str | None = None,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        deliverer: Deliverer | None = None,
        cores: int | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.drain = drain
        self.scheduled = scheduled or []
        self.worker_id = worker_id or new_worker_id()
        self.stats = WorkerStats()
        self.on_batch = on_batch  # an observer (metrics) told of every processed batch
        self.deliverer = deliverer  # alert deliveries, a task of their own beside the slots
        self._stopping = asyncio.Event()
        self._wakeups = [asyncio.Event() for _ in range(settings.worker_concurrency)]
        # The urgent lane's wake-up is the last one: every wake-up reaches it, except the
        # NOTIFYs of enqueues below `urgent`.
        self._lanes = [_Lane()] * settings.worker_concurrency
        if settings.urgent_lane:
            self._wakeups.append(asyncio.Event())
            self._lanes.append(URGENT_LANE)
        self._slots_done = asyncio.Event()  # drain mode: the regular slots found nothing due
        self._sleeping = 0
        # Observable states (tests, `aoer up`): LISTEN is in place; every slot is asleep.
        self.listening = asyncio.Event()
        self.idle = asyncio.Event()
        self._in_hand: dict[UUID, ClaimedJob] = {}
        # Regular slots kept busy: all of them until a heartbeat says the workers sharing the
        # database's host outnumber its cores (worker/slots.py); the rest wait unclaimed.
        self.active_slots = settings.worker_concurrency
        self._slots_given = "worker_concurrency" in settings.model_fields_set
        self._cores = cores or host_cores()
        self.heartbeat: Heartbeat | None = None  # the last heartbeat's answer (console, tests)
        # The operator's pause (aoer_queue_state), as last heard by NOTIFY or heartbeat. The
        # claim statement checks the stored flag itself; this only spares pointless claims.
        self.paused = False
        self._beat_now = asyncio.Event()
        self.started_at = datetime.now(UTC)

    def stop(self) -> None:
        """Stop claiming; batches in hand finish, then `run` returns."""
        if not self._stopping.is_set():
            # Said at once: a batch in hand may take its lock waits to finish, and a
            # supervisor's grace period is counting.
            logger.info(
                "[AOER] Worker %s stopping: claiming nothing more, finishing %d jobs in hand",
                self.worker_id,
                len(self._in_hand),
                extra={"action": "worker_stopping", "worker_id": self.worker_id},
            )
        self._stopping.set()
        self._wake_all()

    def _wake_all(self) -> None:
        for event in self._wakeups:
            event.set()

    def _listener_woke(self, notified: bool, priority: str | None = None) -> None:
        if notified and priority == QUEUE_SETTLED:
            return  # a job settled (a failed attempt): nothing new to claim
        if notified:
            self.stats.notifications += 1
        else:  # (re)connected: a pause or resume may have been missed meanwhile
            self._beat_now.set()
        for event, lane in zip(self._wakeups, self._lanes, strict=True):
            if not notified or priority is None or lane is not URGENT_LANE or priority == "urgent":
                event.set()

    def _control(self, payload: str) -> None:
        """The operator paused or resumed the queue (stop claiming, or claim at once), or a
        worker came or went (the heartbeat counts the live workers again)."""
        if payload in ("paused", "resumed"):
            self._set_paused(payload == "paused")
        self._beat_now.set()  # tell the console this worker heard it; learn the workers

    def _resize(self, beat: Heartbeat) -> None:
        """Keep as many slots busy as the heartbeat's count of workers leaves this one."""
        slots = batch_slots(
            self.settings.worker_concurrency,
            explicit=self._slots_given,
            database_here=beat.database_here,
            cores=self._cores,
            live_workers=beat.live_workers,
        )
        if slots == self.active_slots:
            return
        self.active_slots = slots
        sharing = beat.live_workers
        logger.info(
            "[AOER] worker %s keeps %d of its %s busy: %s the database host's %s",
            self.worker_id,
            slots,
            plural(self.settings.worker_concurrency, "batch slot"),
            plural(sharing, "live worker") + (" shares" if sharing == 1 else " share"),
            plural(self._cores, "core"),
            extra={"worker_id": self.worker_id, "action": "slots"},
        )
        self._wake_all()  # a slot given back starts claiming

    def _set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        logger.info(
            "[AOER] worker %s %s",
            self.worker_id,
            "paused: claiming nothing, finishing what it holds" if paused else "resumed",
            extra={"worker_id": self.worker_id, "action": "pause" if paused else "resume"},
        )
        if not paused:
            self._wake_all()

    async def run(self) -> WorkerStats:
        logger.info(
            "[AOER] AOER Orchestrator worker active",
            extra={"worker_id": self.worker_id, "action": "start"},
        )
        helpers: list[asyncio.Task[None]] = []
        delivering: asyncio.Task[None] | None = None
        if self.deliverer is not None and not self.drain:
            delivering = asyncio.create_task(
                self.deliverer.run(self._stopping), name="aoer-alert-delivery"
            )
        if not self.drain or self.settings.urgent_lane:
            # A drain listens too when it has an urgent lane: urgent enqueues wake the lane.
            helpers.append(
                asyncio.create_task(
                    listen_for_jobs(self.store, self._listener_woke, self.listening, self._control),
                    name="aoer-queue-listener",
                )
            )
        if not self.drain:
            helpers.append(asyncio.create_task(self._keep_leases(), name="aoer-lease-keeper"))
            helpers.append(asyncio.create_task(self._heartbeat(), name="aoer-heartbeat"))
            if self.scheduled:
                helpers.append(
                    asyncio.create_task(
                        run_scheduler(self.store, self.scheduled, self.worker_id, self._stopping),
                        name="aoer-scheduler",
                    )
                )
            # Listen before the first claim so no NOTIFY falls between them.
            await wait_set(self.listening, LISTEN_READY_S)
        try:
            async with asyncio.TaskGroup() as group:
                regular = [
                    group.create_task(self._slot(slot), name=f"aoer-batch-slot-{slot}")
                    for slot, lane in enumerate(self._lanes)
                    if lane is not URGENT_LANE
                ]
                if self.settings.urgent_lane:
                    group.create_task(self._slot(len(self._lanes) - 1), name="aoer-urgent-lane")
                if self.drain:
                    await asyncio.gather(*regular)
                    self._slots_done.set()  # the urgent lane ends with them
                    self._wake_all()
            if self.drain and self.deliverer is not None:
                await self.deliverer.drain()
        finally:
            await cancel_all(helpers)
            if delivering is not None:
                # Sends in flight finish (each bounded by its timeout); none is started anew.
                self._stopping.set()
                await asyncio.gather(delivering, return_exceptions=True)
            if not self.drain:
                await self._deregister()
        logger.info(
            "[AOER] Worker %s stopped: %d batches, %d completed, %d failed",
            self.worker_id,
            self.stats.batches,
            self.stats.completed,
            self.stats.failed,
        )
        return self.stats

    async def _slot(self, slot: int) -> None:
        wake, lane = self._wakeups[slot], self._lanes[slot]
        urgent_lane = lane is URGENT_LANE
        while not self._stopping.is_set():
            wake.clear()
            try:
                if self.paused and not self.drain:
                    await self._sleep(wake, self.settings.poll_s)
                    continue
                if urgent_lane and self._slots_done.is_set():
                    return
                if not urgent_lane and slot >= self.active_slots:
                    await self._sleep(wake, self.settings.poll_s)  # set aside (_resize)
                    continue
                jobs = await self._claim(lane)
                if jobs:
                    await self._process(jobs)
                    continue
                if self.drain and not urgent_lane:
                    return
                # The lane sleeps until an urgent NOTIFY or the poll: a delayed job coming
                # due (what the others wait for) is rarely urgent.
                await self._sleep(wake, self.settings.poll_s if urgent_lane else None)
            except asyncio.CancelledError:
                raise
            except TransientDatabaseError as exc:
                # The database is away (restart, network): one line, then try again.
                logger.warning("[AOER] worker slot %d: %s; retrying", slot, exc)
                await self._sleep(wake, self.settings.poll_s)
            except Exception:
                # A failing batch never stops the loop; its leases expire if it was lost.
                logger.exception("[AOER] worker slot %d error; retrying", slot)
                await self._sleep(wake, self.settings.poll_s)

    async def _claim(self, lane: _Lane) -> list[ClaimedJob]:
        async with self.store.session() as session:
            if self.drain and lane is not URGENT_LANE:
                await queue.reclaim_expired(session)
            jobs = await session.jobs.claim(self.worker_id, lane.limit, lane.min_priority)
        for job in jobs:
            self._in_hand[job.id] = job
        return jobs

    async def _settle(self, jobs: list[ClaimedJob]) -> BatchOutcome | None:
        """Process the batch. A passing database error (connection lost, restart, deadlock,
        timeout) is no tenant's fault and spends no attempt: the batch is retried in place,
        with backoff, while the worker runs and within AOER_CONNECT_TIMEOUT; past that the
        jobs are released back to the queue (None).

        A conflict that keeps happening (a lock or statement timeout, a deadlock, met
        CONFLICTS_BEFORE_ISOLATING times) may be one tenant's: a summary row an open
        transaction holds, a recompute that never finishes. The next try bisects it like
        any poison tenant, so that tenant spends an attempt and its neighbours commit;
        once, since a conflict on more than a few tenants is nobody's (batches.py)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.connect_timeout_s
        delay = RETRY_FIRST_S
        retries = conflicts = 0
        isolate = isolated = False
        while True:
            try:
                async with self.store.session() as session:
                    return await queue.process_batch(
                        session, self.worker_id, jobs, isolate_conflicts=isolate
                    )
            except TransientDatabaseError as exc:
                retries += 1
                isolated = isolated or isolate
                conflicts += isinstance(exc, ConcurrencyConflict)
                isolate = not isolated and conflicts >= CONFLICTS_BEFORE_ISOLATING
                if self._stopping.is_set() or loop.time() + delay > deadline:
                    await self._release(jobs, f"{exc} (after {retries} attempts)")
                    return None
                waited = await self._lock_wait(exc)
                logger.warning(
                    "[AOER] batch of %s%s: %s%s; %s in %.1fs",
                    plural(len(jobs), "job"),
                    f" (tenant {jobs[0].tenant_id})" if len(jobs) == 1 else "",
                    exc.described,
                    f"; {waited}" if waited else "",
                    "isolating the tenants it keeps failing on" if isolate else "retrying",
                    delay,
                    extra={"action": "batch_retry", "worker_id": self.worker_id},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _lock_wait(self, exc: DatabaseError) -> LockWait | None:
        """For a lock timeout: whose row it waited on and which sessions may hold it, so the
        warning names the blocker (best effort: None when it cannot tell)."""
        if lock_wait_place(exc.diagnostics) is None:
            return None
        try:
            async with self.store.session(timeout_s=LOCK_WAIT_LOOKUP_S) as session:
                return await session.console.lock_wait(exc.diagnostics)
        except DatabaseError:
            return None

    async def _release(self, jobs: list[ClaimedJob], reason: str) -> None:
        """Give the jobs back without spending an attempt (best effort: if the database is
        still away, their leases expire and another worker takes them back)."""
        try:
            async with self.store.session() as session:
                released, ended = await session.jobs.release(
                    self.worker_id, [j.id for j in jobs], reason
                )
        except TransientDatabaseError as exc:
            logger.warning(
                "[AOER] could not release %d jobs (%s); their leases will expire", len(jobs), exc
            )
            return
        logger.warning(
            "[AOER] released %d of %d jobs back to the queue: %s%s",
            released,
            len(jobs),
            reason,
            f"; {ended} ended, their tenant's waiting job carrying the recompute" if ended else "",
        )

    async def _process(self, jobs: list[ClaimedJob]) -> None:
        try:
            settled = await self._settle(jobs)
        finally:
            for job in jobs:
                self._in_hand.pop(job.id, None)
        if settled is None:
            return
        outcome = settled
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
            await wait_set(wake, seconds)
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

    async def _heartbeat(self) -> None:
        """Upsert this worker's aoer_workers row every few seconds (at once after a pause or
        resume, or a reconnect), learning the queue's paused flag each time: a missed
        notification is made up within one heartbeat."""
        host, pid = socket.gethostname(), os.getpid()
        failing = False  # one line when heartbeats start failing and one when they recover
        while True:
            self._beat_now.clear()
            try:
                async with self.store.session() as session:
                    beat = await session.console.heartbeat(
                        self.worker_id,
                        host=host,
                        pid=pid,
                        started_at=self.started_at,
                        jobs_in_hand=len(self._in_hand),
                        stale_s=WORKER_STALE_S,
                    )
                self.heartbeat = beat
                self._set_paused(beat.paused)
                self._resize(beat)
                if failing:
                    logger.info("[AOER] worker heartbeat recovered")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the next beat tries again
                if not failing:
                    logger.warning("[AOER] worker heartbeat failed (%s); retrying quietly", exc)
                failing = True
            await wait_set(self._beat_now, WORKER_HEARTBEAT_S)

    async def _deregister(self) -> None:
        """A clean exit: this worker's row goes (best effort; retention cleans up after)."""
        try:
            async with self.store.session(timeout_s=DEREGISTER_WAIT_S) as session:
                await session.console.worker_gone(self.worker_id)
        except Exception as exc:
            logger.warning("[AOER] could not remove worker row %s: %s", self.worker_id, exc)

    async def _keep_leases(self) -> None:
        """Renew the leases of jobs in hand and take back those of dead workers.

        Renewal never waits on a row (this worker's own batch may hold it), so it cannot
        deadlock with the batch; a lease is reported lost only when another worker has
        really taken the job back."""
        lease_s = self.store.policy.lease_s
        interval = min(lease_s / LEASE_RENEWALS_PER_LEASE, LEASE_CHECK_MAX_S)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.store.session() as session:
                    checks = await session.jobs.renew(self.worker_id, list(self._in_hand))
                    lost = [c.id for c in checks if c.lost and c.id in self._in_hand]
                    if lost:
                        logger.warning(
                            "[AOER] lost the lease of %d jobs: another worker took them back",
                            len(lost),
                            extra={"action": "lease_lost", "worker_id": self.worker_id},
                        )
                    await queue.reclaim_expired(session)
            except asyncio.CancelledError:
                raise
            except TransientDatabaseError as exc:
                logger.warning("[AOER] lease keeper: %s", exc)
            except Exception:
                logger.exception("[AOER] lease keeper error")
