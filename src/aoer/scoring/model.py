"""The self-improving loop (DESIGN §9): train, promote or retire, roll back, audit every run.

A run holds the model lock for its transaction, reads its tenant-days in one statement,
fits and judges off the event loop (`training.py`), and records the challenger, any change
of champion, the re-queue of every active tenant and its audit row in that one transaction:
scores never change without a new version, an audit row and a recompute of every tenant.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal

from psycopg.types.json import Jsonb

from aoer.config import Settings
from aoer.constants import CRON_PRIORITY
from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.errors import InvalidInput
from aoer.queue.jobs import enqueue_all_active
from aoer.scoring import model_store as store
from aoer.scoring.model_store import AuditEntry, ModelVersion
from aoer.scoring.training import Evaluation, Policy, Window, evaluate

logger = logging.getLogger(__name__)

MODEL_LOCK_KEY: Final = 0x4A0E7_0005  # pg_advisory_xact_lock key of training and rollback
Trigger = Literal["schedule", "cli", "api"]


class NothingToRollBack(InvalidInput):
    """There is no earlier champion to roll back to."""


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """A run's result; `audit_id` is None for a dry run, which writes nothing."""

    window: Window
    evaluation: Evaluation
    champion_version: str
    challenger_version: str | None
    result_version: str
    requeued: int
    duration_ms: float
    dry_run: bool
    audit_id: str | None


@dataclass(frozen=True, slots=True)
class Rollback:
    from_version: str
    to_version: str
    requeued: int
    audit_id: str


@dataclass(frozen=True, slots=True)
class ModelStatus:
    champion: ModelVersion
    runs: list[AuditEntry]


def policy_from_settings(settings: Settings) -> Policy:
    return Policy(
        holdout_days=settings.model_holdout_days,
        train_days=settings.model_train_days,
        min_rows=settings.model_min_rows,
        min_holdout_rows=settings.model_min_holdout_rows,
        min_tenants=settings.model_min_tenants,
        margin=settings.model_margin,
        min_r2=settings.model_min_r2,
    )


async def train(
    conn: Connection,
    policy: Policy,
    *,
    trigger: Trigger,
    as_of: date | None = None,
    dry_run: bool = False,
    tick: datetime | None = None,
    max_retries: int = 3,
) -> TrainingRun:
    """Fit a challenger, judge it against the champion, promote or retire it, audit the run.

    `as_of` (default: today, UTC) fixes the split, so a run can be repeated exactly; a dry
    run fits and judges but writes nothing.
    """
    started = time.perf_counter()
    challenger_version: str | None = None
    requeued = 0
    audit_id = None
    async with conn.transaction():
        await conn.execute(query("model_lock"), {"key": MODEL_LOCK_KEY})
        today = await store.today(conn)
        if as_of and as_of > today:
            raise InvalidInput(f"as-of date {as_of} is in the future (today is {today} UTC)")
        try:
            window = Window.ending(as_of or today, policy)
        except OverflowError:
            days = policy.train_days + policy.holdout_days
            raise InvalidInput(f"as-of date {as_of} leaves no room for {days} days") from None
        champion = await store.current_champion(conn)
        data = await store.load_dataset(conn, window)
        # NNLS and the metrics are CPU work: keep the event loop (leases, API) responsive.
        result = await asyncio.to_thread(evaluate, data, champion.weights, policy)
        result_version = champion.version
        if not dry_run and result.challenger is not None:
            challenger_version = await store.next_version(conn)
            await store.insert_version(conn, challenger_version, result.challenger, window, result)
            if result.decision == "promoted":
                await store.swap_champion(
                    conn, challenger_version, previous=champion.version, promotion=True
                )
                result_version = challenger_version
                requeued = await enqueue_all_active(conn, CRON_PRIORITY, max_retries=max_retries)
        duration_ms = (time.perf_counter() - started) * 1000
        if not dry_run:
            audit_id = await store.insert_audit(
                conn,
                {
                    "kind": "train",
                    "trigger": trigger,
                    "tick": tick,
                    "champion_version": champion.version,
                    "challenger_version": challenger_version,
                    "result_version": result_version,
                    "decision": result.decision,
                    "reason": result.reason,
                    "as_of": window.as_of,
                    "train_from": window.train_from,
                    "train_to": window.train_to,
                    "holdout_from": window.holdout_from,
                    "holdout_to": window.holdout_to,
                    "train_rows": result.train_rows,
                    "holdout_rows": result.holdout_rows,
                    "train_tenants": result.train_tenants,
                    "holdout_tenants": result.holdout_tenants,
                    **store.metric_fields("champion", result.champion_metrics),
                    **store.metric_fields("challenger", result.challenger_metrics),
                    "requeued": requeued,
                    "settings": Jsonb(result.details["policy"]),
                    "details": Jsonb(
                        {
                            **result.details,
                            "components": list(result.components),
                            "droppedRows": result.dropped_rows,
                        }
                    ),
                    "duration_ms": duration_ms,
                },
            )
    logger.info(
        "[AOER] Model training%s: %s (champion %s, challenger %s): %s",
        " (dry run)" if dry_run else "",
        result.decision,
        champion.version,
        challenger_version or "-",
        result.reason,
        extra={"action": "model_train"},
    )
    if requeued:
        logger.info("[AOER] Queued %d tenants for recompute", requeued, extra={"action": "model"})
    return TrainingRun(
        window=window,
        evaluation=result,
        champion_version=champion.version,
        challenger_version=challenger_version,
        result_version=result_version,
        requeued=requeued,
        duration_ms=duration_ms,
        dry_run=dry_run,
        audit_id=audit_id,
    )


async def train_on_tick(conn: Connection, settings: Settings, tick_name: str) -> TrainingRun:
    """The weekly scheduler action: train inside the transaction that claimed the tick."""
    return await train(
        conn,
        policy_from_settings(settings),
        trigger="schedule",
        tick=await store.tick_in_progress(conn, tick_name),
        max_retries=settings.max_retries,
    )


async def rollback(conn: Connection, *, trigger: Trigger, max_retries: int = 3) -> Rollback:
    """Restore the champion the current one replaced, re-queue every tenant, audit it."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(query("model_lock"), {"key": MODEL_LOCK_KEY})
        champion = await store.current_champion(conn)
        if champion.previous_version is None:
            raise NothingToRollBack(
                f"nothing to roll back: {champion.version} did not replace an earlier champion"
            )
        previous = champion.previous_version
        await store.swap_champion(conn, previous, previous=None, promotion=False)
        requeued = await enqueue_all_active(conn, CRON_PRIORITY, max_retries=max_retries)
        audit_id = await store.insert_audit(
            conn,
            {
                "trigger": trigger,
                "champion_version": champion.version,
                "result_version": previous,
                "reason": f"rolled back from {champion.version} to {previous}",
                "requeued": requeued,
                "duration_ms": (time.perf_counter() - started) * 1000,
            },
            rollback=True,
        )
    logger.warning(
        "[AOER] Model rolled back from %s to %s; queued %d tenants for recompute",
        champion.version,
        previous,
        requeued,
        extra={"action": "model_rollback"},
    )
    return Rollback(champion.version, previous, requeued, audit_id)


async def model_status(conn: Connection, *, runs: int = 10) -> ModelStatus:
    """The champion and the latest runs, newest first."""
    async with conn.transaction():
        champion = await store.current_champion(conn)
        return ModelStatus(champion, await store.recent_audit(conn, runs))
