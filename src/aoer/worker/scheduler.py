"""Cron ticks that fire once across every worker, including one missed while all were down.

Each firing inserts its tick into `aoer_cron_ticks`: the primary key lets exactly one worker
win a tick. By default the action runs in that same transaction, so it happens exactly when
the tick is recorded, and an action that fails leaves the tick unrecorded for the next pass.
The claimer holds a (job, tick) advisory lock for that transaction: other schedulers skip a
tick being fired rather than wait on its uncommitted row.
An idempotent action that works in many short transactions of its own (retention deletes in
batches) sets `in_tick_transaction=False`: the tick is claimed and committed first, the
action runs outside it, and a failure releases the tick so the next pass tries again.

A job over the whole fleet works in chunks instead (`chunk=`, the recompute tick): the tick is
claimed, then each chunk commits in its own transaction together with the tick row's
`resume_after` (the last key it covered), so workers start on the first chunk while the rest
is still being queued. One scheduler at a time runs a job's chunks (a session-level advisory
lock, released when its connection ends); a tick whose scheduler died is left unfinished and
the next scheduler to pass resumes it from `resume_after`: no key is lost or covered twice.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from croniter import croniter

from aoer.errors import InvalidInput
from aoer.store import Session, Store
from aoer.types import JsonObject
from aoer.waiting import wait_set

logger = logging.getLogger(__name__)

MAX_SLEEP_S = 60.0  # re-check at least this often (clock changes, missed wake-ups)
# A job whose firing failed is tried again no sooner than this, doubling with each failure
# in a row up to the cap: a job that fails every time (a training over too much data, a
# database refusing it) must not run every few seconds forever. Other jobs are not held up.
ERROR_RETRY_FIRST_S = 60.0
ERROR_RETRY_MAX_S = 3600.0

TickAction = Callable[[Session], Awaitable[JsonObject]]


@dataclass(frozen=True)
class Chunk:
    """What one chunk of a chunked tick did: the last key it covered (None: no key was left),
    whether the tick is done, and counts to add to the tick's result."""

    last: UUID | None
    finished: bool
    counts: dict[str, int]


# Runs one chunk after `after` (from the first key when None), inside the chunk's transaction.
ChunkAction = Callable[[Session, UUID | None], Awaitable[Chunk]]


async def _no_action(session: Session) -> JsonObject:
    raise NotImplementedError  # a chunked job runs `chunk`, never `action`


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    cron: str
    action: TickAction = _no_action
    in_tick_transaction: bool = True
    chunk: ChunkAction | None = None
    chunk_pause_s: float = 0.0  # between chunks: spreads a tick's load (and lets tests kill)
    on_done: Callable[[JsonObject], None] | None = None  # a chunked tick's final result
    # Run with the action's result once the tick's transaction committed (an in-transaction
    # action's follow-up that must see its changes committed).
    after_commit: Callable[[Session, JsonObject], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise InvalidInput(f"not a valid cron expression for {self.name}: {self.cron!r}")
        if (self.chunk is None) == (self.action is _no_action):
            raise InvalidInput(f"{self.name} needs exactly one of an action or a chunk action")

    def previous_tick(self, now: datetime) -> datetime:
        """The latest tick at or before `now`."""
        return croniter(self.cron, now).get_prev(datetime)

    def next_tick(self, now: datetime) -> datetime:
        return croniter(self.cron, now).get_next(datetime)


async def fire_if_due(
    session: Session, job: ScheduledJob, fired_by: str, now: datetime | None = None
) -> JsonObject | None:
    """Fire `job`'s latest tick unless some worker already did; returns the action's result."""
    tick = job.previous_tick(now or datetime.now(UTC))
    ticks = session.ticks
    if job.chunk is not None:
        return await _fire_chunked(session, job, job.chunk, tick, fired_by)
    if job.in_tick_transaction:
        async with session.transaction():
            if not await _claim(session, job, tick, fired_by):
                return None
            result = await job.action(session)
            await ticks.record(job.name, tick, result)
        if job.after_commit is not None:
            await job.after_commit(session, result)
    else:
        async with session.transaction():
            if not await _claim(session, job, tick, fired_by):
                return None
        try:
            result = await job.action(session)
        except BaseException:
            # If the database is gone too, the claim stays and the next tick catches up.
            with contextlib.suppress(Exception):
                await ticks.release(job.name, tick, fired_by)
            raise
        await ticks.record(job.name, tick, result)
    logger.info("[AOER] %s tick %s fired by %s", job.name, tick.isoformat(), fired_by)
    return result


async def _claim(session: Session, job: ScheduledJob, tick: datetime, fired_by: str) -> bool:
    """Claim `tick` in the caller's transaction; False when another scheduler fired it or is
    firing it now. The claimer holds the tick's advisory lock until its transaction ends, so
    a scheduler passing while another's action runs (the weekly training: minutes) skips the
    tick at once instead of waiting on the uncommitted tick row until lock_timeout; a
    claimer that dies rolls back its row and its lock together, and the tick fires again."""
    if not await session.ticks.try_claim_lock(job.name, tick):
        return False
    return await session.ticks.claim(job.name, tick, fired_by)


async def _fire_chunked(
    session: Session, job: ScheduledJob, chunk: ChunkAction, tick: datetime, fired_by: str
) -> JsonObject | None:
    """Claim `tick` and run its chunks, after finishing any tick a dead scheduler left
    unfinished; None when another scheduler has the job or nothing was left to do."""
    ticks = session.ticks
    started = time.monotonic()
    if not await ticks.try_lock(job.name):
        return None  # another scheduler is running this job's chunks right now
    try:
        async with session.transaction():
            claimed = await ticks.claim(job.name, tick, fired_by)
        result: JsonObject | None = None
        for left in await ticks.unfinished(job.name):
            resumed = not (claimed and left.tick == tick)
            progress: dict[str, object] = dict(left.result or {})
            progress["resumed"] = bool(progress.get("resumed")) or resumed
            after = left.resume_after
            while True:
                async with session.transaction():
                    done = await chunk(session, after)
                    after = done.last or after
                    for key, value in done.counts.items():
                        count = progress.get(key, 0)
                        progress[key] = (count if isinstance(count, int) else 0) + value
                    progress["chunks"] = int(str(progress.get("chunks", 0))) + 1
                    if "firstChunkMs" not in progress:
                        # from this scheduler's start on the tick to the first committed chunk
                        progress["firstChunkMs"] = round((time.monotonic() - started) * 1000, 1)
                    await ticks.advance(job.name, left.tick, after, progress)
                if done.finished:
                    break
                if job.chunk_pause_s:
                    await asyncio.sleep(job.chunk_pause_s)
            progress["tickMs"] = round((time.monotonic() - started) * 1000, 1)
            await ticks.record(job.name, left.tick, progress)
            if job.on_done is not None:
                job.on_done(progress)
            logger.info(
                "[AOER] %s tick %s %s by %s",
                job.name,
                left.tick.isoformat(),
                "resumed and finished" if resumed else "fired",
                fired_by,
            )
            result = progress
        return result
    finally:
        with contextlib.suppress(Exception):
            await ticks.unlock(job.name)


def error_retry_s(failures: int) -> float:
    """How long a job that has failed `failures` times in a row waits before its next try."""
    return float(min(ERROR_RETRY_FIRST_S * 2 ** min(failures - 1, 32), ERROR_RETRY_MAX_S))


async def run_scheduler(
    store: Store, jobs: list[ScheduledJob], fired_by: str, stopping: asyncio.Event
) -> None:
    """Fire due ticks, then sleep until the next one (or until stopping); a job that failed
    waits out its back-off (`error_retry_s`) while the others go on."""
    failures: dict[str, int] = {}
    retry_at: dict[str, float] = {}  # time.monotonic() of a failed job's next try
    while not stopping.is_set():
        now = datetime.now(UTC)
        delay = MAX_SLEEP_S
        for job in jobs:
            backing_off_s = retry_at.get(job.name, 0.0) - time.monotonic()
            if backing_off_s > 0:
                delay = min(delay, backing_off_s)
                continue
            try:
                async with store.session() as session:
                    await fire_if_due(session, job, fired_by, now)
            except Exception:
                failed = failures[job.name] = failures.get(job.name, 0) + 1
                wait_s = error_retry_s(failed)
                retry_at[job.name] = time.monotonic() + wait_s
                logger.exception(
                    "[AOER] scheduler could not fire %s (%d failure(s) in a row; "
                    "next try in %.0f s)",
                    job.name,
                    failed,
                    wait_s,
                    extra={"action": "scheduler_error"},
                )
                delay = min(delay, wait_s)
                continue
            failures.pop(job.name, None)
            retry_at.pop(job.name, None)
            seconds = (job.next_tick(now) - datetime.now(UTC)).total_seconds()
            delay = min(delay, max(seconds, 0.05))
        await wait_set(stopping, delay)
