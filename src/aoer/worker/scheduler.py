"""Cron ticks that fire once across every worker, including one missed while all were down.

Each firing inserts its tick into `aoer_cron_ticks`: the primary key lets exactly one worker
win a tick. By default the action runs in that same transaction, so it happens exactly when
the tick is recorded, and an action that fails leaves the tick unrecorded for the next pass.
An idempotent action that works in many short transactions of its own (retention deletes in
batches) sets `in_tick_transaction=False`: the tick is claimed and committed first, the
action runs outside it, and a failure releases the tick so the next pass tries again.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from aoer.errors import InvalidInput
from aoer.store import Session, Store
from aoer.types import JsonObject

logger = logging.getLogger(__name__)

MAX_SLEEP_S = 60.0  # re-check at least this often (clock changes, missed wake-ups)
ERROR_RETRY_S = 5.0

TickAction = Callable[[Session], Awaitable[JsonObject]]


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    cron: str
    action: TickAction
    in_tick_transaction: bool = True

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise InvalidInput(f"not a valid cron expression for {self.name}: {self.cron!r}")

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
    if job.in_tick_transaction:
        async with session.transaction():
            if not await ticks.claim(job.name, tick, fired_by):
                return None
            result = await job.action(session)
            await ticks.record(job.name, tick, result)
    else:
        async with session.transaction():
            if not await ticks.claim(job.name, tick, fired_by):
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


async def run_scheduler(
    store: Store, jobs: list[ScheduledJob], fired_by: str, stopping: asyncio.Event
) -> None:
    """Fire due ticks, then sleep until the next one (or until stopping)."""
    while not stopping.is_set():
        now = datetime.now(UTC)
        delay = MAX_SLEEP_S
        for job in jobs:
            try:
                async with store.session() as session:
                    await fire_if_due(session, job, fired_by, now)
            except Exception:
                logger.exception("[AOER] scheduler could not fire %s", job.name)
                delay = ERROR_RETRY_S
            seconds = (job.next_tick(now) - datetime.now(UTC)).total_seconds()
            delay = min(delay, max(seconds, 0.05))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)
