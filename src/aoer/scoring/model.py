"""The self-improving loop (DESIGN §9): train, promote or retire, roll back, audit every run.

A rollback pins the model it restores: training still runs and records its challengers,
but one it would promote is `held` until `unpin`, so the next weekly run does not promote
again what the operator just rolled back.

A run holds the model lock for its transaction, reads its tenant-days as sums the database
computes (`training.py` fits from them), and records the challenger, any change
of champion, the re-queue of every active tenant and its audit rows (`model_audit`, and
`audit_log` for a promotion or rollback) in that one transaction: scores never change
without a new version, an audit row and a recompute of every tenant.
"""

import logging
import time
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal

from aoer.config import Settings
from aoer.constants import CRON_PRIORITY
from aoer.errors import AoerError, Conflict, InvalidInput
from aoer.store import Session
from aoer.store.audit import AuditEntry as TrailEntry
from aoer.store.models import AuditEntry, ModelVersion, metric_fields
from aoer.training import Evaluation, Policy, Window, evaluate

logger = logging.getLogger(__name__)

Trigger = Literal["schedule", "cli", "api"]


class NothingToRollBack(Conflict):
    """There is no earlier champion to roll back to."""


class NotPinned(Conflict):
    """The champion is not pinned: there is nothing to unpin."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked for a run or a rollback, as the audit log records it: an API caller, a CLI
    user (`cli:<user>`) or a worker's scheduler (`scheduler:<worker id>`)."""

    subject: str
    role: str
    ip: str | None = None

    def entry(self, action: str, to_version: str, from_version: str, audit_id: str) -> TrailEntry:
        """The audit log's row for a change of champion (model.promote, model.rollback)."""
        details = {"from": from_version, "auditId": audit_id}
        return TrailEntry(
            self.subject, self.role, action, target=to_version, details=details, ip=self.ip
        )


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
    session: Session,
    policy: Policy,
    *,
    trigger: Trigger,
    by: Actor,
    as_of: date | None = None,
    dry_run: bool = False,
    tick: datetime | None = None,
) -> TrainingRun:
    """Fit a challenger, judge it against the champion, promote or retire it, audit the run.

    `as_of` (default: today, UTC) fixes the split, so a run can be repeated exactly; a dry
    run fits and judges but writes nothing. A promotion's `audit_log` row (model.promote, by
    `by`) commits with it or not at all.
    """
    started = time.perf_counter()
    challenger_version: str | None = None
    requeued = 0
    audit_id = None
    models = session.models
    # Inside a caller's transaction (the weekly tick's), that caller re-queues after commit.
    commits_here = not session.in_transaction()
    async with session.transaction():
        await models.lock()
        today = await models.today()
        if as_of and as_of > today:
            raise InvalidInput(f"as-of date {as_of} is in the future (today is {today} UTC)")
        try:
            window = Window.ending(as_of or today, policy)
        except OverflowError:
            days = policy.train_days + policy.holdout_days
            raise InvalidInput(f"as-of date {as_of} leaves no room for {days} days") from None
        champion = await models.champion()
        # The window is read as sums computed by the database (a few statements, a few
        # dozen numbers), never as rows: memory and event-loop time do not grow with it.
        result = await evaluate(models.window_data(window), champion.weights, policy)
        if result.decision == "promoted" and champion.pinned_at is not None:
            result = held(result, champion)
        result_version = champion.version
        if not dry_run and result.challenger is not None:
            challenger_version = await models.next_version()
            await models.insert_version(challenger_version, result.challenger, window, result)
            if result.decision == "promoted":
                await models.swap_champion(
                    challenger_version, previous=champion.version, promotion=True
                )
                result_version = challenger_version
                requeued = await session.jobs.enqueue_all_active(CRON_PRIORITY)
        duration_ms = (time.perf_counter() - started) * 1000
        if not dry_run:
            audit_id = await models.insert_audit(
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
                    **metric_fields("champion", result.champion_metrics),
                    **metric_fields("challenger", result.challenger_metrics),
                    "requeued": requeued,
                    "settings": result.details["policy"],
                    "details": {
                        **result.details,
                        "components": list(result.components),
                        "droppedRows": result.dropped_rows,
                    },
                    "duration_ms": duration_ms,
                },
            )
            if result_version != champion.version:
                entry = by.entry("model.promote", result_version, champion.version, audit_id)
                await session.audit.record(entry)
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
    if commits_here and not dry_run and result_version != champion.version:
        await requeue_after_change(session, result_version)
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


async def train_on_tick(session: Session, policy: Policy, tick_name: str) -> TrainingRun:
    """The weekly scheduler action: train inside the transaction that claimed the tick, as
    `scheduler:<worker id>` (the worker that fired it) in the audit log. After that
    transaction commits, a promotion needs `requeue_after_change`."""
    tick = await session.ticks.in_progress(tick_name)
    by = Actor(f"scheduler:{tick.fired_by if tick else 'unknown'}", "service")
    return await train(session, policy, trigger="schedule", by=by, tick=tick.tick if tick else None)


async def rollback(session: Session, *, trigger: Trigger, by: Actor) -> Rollback:
    """Restore the champion the current one replaced, re-queue every tenant, audit it (in
    `model_audit` and, as model.rollback by `by`, in `audit_log`) in one transaction."""
    started = time.perf_counter()
    models = session.models
    commits_here = not session.in_transaction()
    async with session.transaction():
        await models.lock()
        champion = await models.champion()
        if champion.previous_version is None:
            raise NothingToRollBack(
                f"nothing to roll back: {champion.version} did not replace an earlier champion"
            )
        previous = champion.previous_version
        await models.swap_champion(previous, previous=None, promotion=False, pinned_by=by.subject)
        requeued = await session.jobs.enqueue_all_active(CRON_PRIORITY)
        audit_id = await models.insert_audit(
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
        await session.audit.record(by.entry("model.rollback", previous, champion.version, audit_id))
    logger.warning(
        "[AOER] Model rolled back from %s to %s; queued %d tenants for recompute",
        champion.version,
        previous,
        requeued,
        extra={"action": "model_rollback"},
    )
    if commits_here:
        await requeue_after_change(session, previous)
    return Rollback(champion.version, previous, requeued, audit_id)


def held(result: Evaluation, champion: ModelVersion) -> Evaluation:
    """A challenger that would have been promoted over a pinned champion: retired, and why."""
    assert champion.pinned_at is not None
    since = champion.pinned_at.strftime("%Y-%m-%d %H:%M UTC")
    return replace(
        result,
        decision="held",
        reason=f"{result.reason}; held: {champion.version} is pinned since its rollback by"
        f" {champion.pinned_by} at {since} (`aoer model unpin` lets training promote again)",
    )


async def unpin(session: Session, *, by: Actor) -> ModelVersion:
    """Let training promote over the champion again (after a rollback pinned it), audited
    as model.unpin; the champion as it was pinned. NotPinned when it is not."""
    async with session.transaction():
        await session.models.lock()
        champion = await session.models.champion()
        if champion.pinned_at is None or await session.models.unpin() is None:
            raise NotPinned(
                f"the champion {champion.version} is not pinned: training may already promote"
            )
        details = {"pinnedAt": champion.pinned_at.isoformat(), "pinnedBy": champion.pinned_by}
        await session.audit.record(
            TrailEntry(
                by.subject,
                by.role,
                "model.unpin",
                target=champion.version,
                details=details,
                ip=by.ip,
            )
        )
    logger.warning(
        "[AOER] Model %s unpinned by %s: training may promote over it again",
        champion.version,
        by.subject,
        extra={"action": "model_unpin"},
    )
    return champion


async def requeue_after_change(session: Session, version: str) -> None:
    """Queue every active tenant once more, now that `version` is the committed champion
    (`train` and `rollback` call it when they commit their own transaction; the caller
    whose transaction they ran in calls it after committing).

    The re-queue inside the change's transaction cannot see a job a worker is claiming at
    that moment (skipped as locked, or still `queued` in its snapshot), and that worker may
    finish the tenant with the old champion before the change commits: this second pass
    catches such tenants. The first one stays, so a crash right after the commit loses no
    re-queue. Best effort: the change is committed and audited whatever happens here, and
    the next cron tick queues everyone anyway."""
    try:
        async with session.transaction():
            queued = await session.jobs.enqueue_all_active(CRON_PRIORITY)
    except AoerError:
        logger.warning(
            "[AOER] could not re-queue tenants after model %s became champion; the next cron "
            "tick will",
            version,
            exc_info=True,
            extra={"action": "model_requeue"},
        )
        return
    logger.debug("re-queued %d tenants after model %s became champion", queued, version)


async def model_status(session: Session, *, runs: int = 10) -> ModelStatus:
    """The champion and the latest runs, newest first."""
    async with session.transaction():
        champion = await session.models.champion()
        return ModelStatus(champion, await session.models.recent_audit(runs))
