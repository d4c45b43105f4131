"""The worker's half of the composition root: the worker and the ticks it schedules."""

from collections.abc import Callable
from uuid import UUID

from aoer.alerts.delivery import Deliverer, DeliveryPolicy
from aoer.bootstrap import Services
from aoer.config import Settings
from aoer.constants import (
    MEDIANS_CRON,
    MEDIANS_TICK,
    MODEL_TICK,
    RECOMPUTE_TICK,
    RETENTION_CRON,
    RETENTION_TICK,
)
from aoer.queue import BatchOutcome, cron_chunk_size, log_cron_queued, queue_cron_chunk
from aoer.queue.retention import RetentionAges, purge
from aoer.scoring import model
from aoer.store import Session
from aoer.types import JsonObject
from aoer.worker import Worker
from aoer.worker.loop import new_worker_id
from aoer.worker.scheduler import Chunk, ScheduledJob


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """The ticks every worker runs: the fleet recompute, the daily retention, the weekly
    model training, the medians the recommendations compare with (every 15 minutes)."""

    async def recompute_chunk(session: Session, after: UUID | None) -> Chunk:
        size = cron_chunk_size(after, settings.tick_chunk)
        done = await queue_cron_chunk(session, after, size)
        finished = done.tenants < size
        return Chunk(done.last_id, finished, {"queued": done.queued, "tenants": done.tenants})

    def recompute_done(result: JsonObject) -> None:
        log_cron_queued(int(result.get("queued", 0)), int(result.get("tenants", 0)))

    async def retention(session: Session) -> JsonObject:
        ages = RetentionAges(
            settings.retain_jobs_days, settings.retain_failures_days, settings.retain_events_days
        )
        return await purge(session, ages)

    async def medians(session: Session) -> JsonObject:
        return {"rows": await session.scores.refresh_medians()}

    async def train_model(session: Session) -> JsonObject:
        run = await model.train_on_tick(session, model.policy_from_settings(settings), MODEL_TICK)
        return {
            "decision": run.evaluation.decision,
            "auditId": run.audit_id,
            "champion": run.result_version,
        }

    async def after_training(session: Session, result: JsonObject) -> None:
        if result["decision"] == "promoted":
            await model.requeue_after_change(session, str(result["champion"]))

    if not settings.run_cron:
        return []
    jobs = [
        # The fleet is queued in chunks of its own transactions: workers start on the first.
        ScheduledJob(
            RECOMPUTE_TICK,
            settings.cron,
            chunk=recompute_chunk,
            chunk_pause_s=settings.tick_chunk_pause_s,
            on_done=recompute_done,
        ),
        # Retention deletes in batches of its own short transactions, not in one long one,
        # and creates / drops monthly partitions.
        ScheduledJob(RETENTION_TICK, RETENTION_CRON, retention, in_tick_transaction=False),
        ScheduledJob(MEDIANS_TICK, MEDIANS_CRON, medians),
    ]
    if settings.model_schedule:
        jobs.append(
            ScheduledJob(MODEL_TICK, settings.model_cron, train_model, after_commit=after_training)
        )
    return jobs


def build_worker(
    services: Services,
    *,
    drain: bool = False,
    on_batch: Callable[[BatchOutcome], None] | None = None,
) -> Worker:
    """A worker over the store, delivering alerts beside its slots (unless
    AOER_ALERT_DELIVERY=false); a drain ("burst") worker runs no scheduler."""
    worker_id = new_worker_id()
    deliverer = None
    if services.settings.alert_delivery:
        policy = DeliveryPolicy.from_settings(services.settings)
        deliverer = Deliverer(services.store, policy, worker_id)
    return Worker(
        services.settings,
        services.store,
        drain=drain,
        scheduled=[] if drain else scheduled_jobs(services.settings),
        worker_id=worker_id,
        on_batch=on_batch,  # an observer of every processed batch (metrics)
        deliverer=deliverer,
    )
