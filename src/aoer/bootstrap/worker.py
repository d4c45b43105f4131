"""The worker's half of the composition root: the worker and the ticks it schedules."""

from collections.abc import Callable

from aoer.alerts.delivery import Deliverer, DeliveryPolicy
from aoer.bootstrap import Services
from aoer.config import Settings
from aoer.constants import MODEL_TICK, RECOMPUTE_TICK, RETENTION_CRON, RETENTION_TICK
from aoer.queue import BatchOutcome, trigger_cron
from aoer.queue.retention import RetentionAges, purge
from aoer.scoring import model
from aoer.store import Session
from aoer.types import JsonObject
from aoer.worker import Worker
from aoer.worker.loop import new_worker_id
from aoer.worker.scheduler import ScheduledJob


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """The ticks every worker runs: the fleet recompute, the daily retention, the weekly
    model training."""

    async def recompute(session: Session) -> JsonObject:
        return {"queued": await trigger_cron(session)}

    async def retention(session: Session) -> JsonObject:
        ages = RetentionAges(
            settings.retain_jobs_days, settings.retain_failures_days, settings.retain_events_days
        )
        return {"deleted": await purge(session, ages)}

    async def train_model(session: Session) -> JsonObject:
        run = await model.train_on_tick(session, model.policy_from_settings(settings), MODEL_TICK)
        return {"decision": run.evaluation.decision, "auditId": run.audit_id}

    if not settings.run_cron:
        return []
    jobs = [
        ScheduledJob(RECOMPUTE_TICK, settings.cron, recompute),
        # Retention deletes in batches of its own short transactions, not in one long one.
        ScheduledJob(RETENTION_TICK, RETENTION_CRON, retention, in_tick_transaction=False),
    ]
    if settings.model_schedule:
        jobs.append(ScheduledJob(MODEL_TICK, settings.model_cron, train_model))
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
