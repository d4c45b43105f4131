"""Admin endpoints of the self-improving score (DESIGN §9): train on demand, read the model."""

import logging
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from aoer.api.auth import Principal, require_admin
from aoer.api.context import Context
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import Camel, StrictCamel
from aoer.api.trail import client_ip
from aoer.scoring import model

logger = logging.getLogger(__name__)

router = APIRouter(tags=["model"])

Admin = Annotated[Principal, Depends(require_admin)]
JsonBody = Annotated[None, Depends(require_json)]
MAX_RUNS = 100


class WeightsOut(Camel):
    seo: float
    aeo: float
    geo: float
    ugc: float
    geolocal: float
    intercept: float


class MetricsOut(Camel):
    rmse: float
    mae: float
    r2: float | None


class ModelOut(Camel):
    version: str
    status: str
    weights: WeightsOut
    as_of: date | None
    holdout_from: date | None
    holdout_to: date | None
    train_rows: int
    holdout_rows: int
    tenants: int
    holdout: MetricsOut | None
    previous_version: str | None
    promoted_at: datetime | None
    created_at: datetime
    pinned_at: datetime | None = Field(
        description="Set by a rollback: training promotes nothing over this model until"
        " `POST /api/model/unpin`"
    )
    pinned_by: str | None


class RunOut(Camel):
    id: str
    kind: str
    trigger: str
    champion_version: str
    challenger_version: str | None
    result_version: str
    decision: str
    reason: str
    holdout_from: date | None
    holdout_to: date | None
    train_rows: int | None
    holdout_rows: int | None
    champion: MetricsOut | None
    challenger: MetricsOut | None
    requeued: int
    duration_ms: float
    created_at: datetime


class ModelStatusOut(Camel):
    champion: ModelOut
    runs: list[RunOut]


class TrainIn(StrictCamel):
    dry_run: bool = False
    as_of: date | None = None


class TrainOut(Camel):
    decision: str
    reason: str
    dry_run: bool
    audit_id: str | None
    champion_version: str
    challenger_version: str | None
    result_version: str
    requeued: int
    as_of: date
    train_from: date
    train_to: date
    holdout_from: date
    holdout_to: date
    train_rows: int
    holdout_rows: int
    train_tenants: int
    holdout_tenants: int
    components: list[str]
    challenger: WeightsOut | None
    champion_metrics: MetricsOut | None
    challenger_metrics: MetricsOut | None
    duration_ms: float


class RollbackOut(Camel):
    from_version: str
    to_version: str
    requeued: int
    audit_id: str


@router.get(
    "/api/model",
    response_model=ModelStatusOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="The champion model and the latest training runs and rollbacks (admin)",
)
async def model_status(
    _: Admin, ctx: Context, runs: Annotated[int, Query(ge=1, le=MAX_RUNS)] = 10
) -> ModelStatusOut:
    async with ctx.session() as session:
        state = await model.model_status(session, runs=runs)
    return ModelStatusOut(
        champion=ModelOut.of(state.champion), runs=[RunOut.of(e) for e in state.runs]
    )


@router.post(
    "/api/model/train",
    response_model=TrainOut,
    responses=error_responses(*AUTHENTICATED, 400, *WITH_JSON_BODY),
    summary="Train a challenger now; promote it only if clearly better (admin)",
    description='Body `{}` or `{"dryRun": true, "asOf": "YYYY-MM-DD"}`. A dry run fits '
    "and judges but writes nothing. A promotion re-queues every active tenant at low priority.",
)
async def train(
    request: Request, principal: Admin, _: JsonBody, body: TrainIn, ctx: Context
) -> TrainOut:
    logger.info(
        "model training requested over HTTP by %s%s",
        principal.subject,
        " (dry run)" if body.dry_run else "",
        extra={"action": "model_train_http"},
    )
    async with ctx.session() as session:
        run = await model.train(
            session,
            model.policy_from_settings(ctx.settings),
            trigger="api",
            by=model.Actor(principal.subject, principal.role, client_ip(request)),
            as_of=body.as_of,
            dry_run=body.dry_run,
        )
    result, window = run.evaluation, run.window
    return TrainOut(
        decision=result.decision,
        reason=result.reason,
        dry_run=run.dry_run,
        audit_id=run.audit_id,
        champion_version=run.champion_version,
        challenger_version=run.challenger_version,
        result_version=run.result_version,
        requeued=run.requeued,
        as_of=window.as_of,
        train_from=window.train_from,
        train_to=window.train_to,
        holdout_from=window.holdout_from,
        holdout_to=window.holdout_to,
        train_rows=result.train_rows,
        holdout_rows=result.holdout_rows,
        train_tenants=result.train_tenants,
        holdout_tenants=result.holdout_tenants,
        components=list(result.components),
        challenger=WeightsOut.of(result.challenger) if result.challenger else None,
        champion_metrics=MetricsOut.of(result.champion_metrics)
        if result.champion_metrics
        else None,
        challenger_metrics=MetricsOut.of(result.challenger_metrics)
        if result.challenger_metrics
        else None,
        duration_ms=run.duration_ms,
    )


@router.post(
    "/api/model/rollback",
    response_model=RollbackOut,
    responses=error_responses(*AUTHENTICATED, 409, 415, 422),
    summary="Restore the previous champion, pinned, and re-queue every tenant (admin)",
    description="The restored champion is pinned: training still runs and records its"
    " challengers, but one it would promote is `held` until `POST /api/model/unpin`.",
)
async def rollback(request: Request, principal: Admin, _: JsonBody, ctx: Context) -> RollbackOut:
    logger.warning(
        "model rollback requested over HTTP by %s",
        principal.subject,
        extra={"action": "model_rollback_http"},
    )
    async with ctx.session() as session:
        by = model.Actor(principal.subject, principal.role, client_ip(request))
        done = await model.rollback(session, trigger="api", by=by)
    return RollbackOut(
        from_version=done.from_version,
        to_version=done.to_version,
        requeued=done.requeued,
        audit_id=done.audit_id,
    )


@router.post(
    "/api/model/unpin",
    response_model=ModelOut,
    responses=error_responses(*AUTHENTICATED, 409, 415, 422),
    summary="Let training promote over the champion a rollback pinned (admin)",
    description="Answers the champion as it was pinned; 409 when it is not pinned.",
)
async def unpin(request: Request, principal: Admin, _: JsonBody, ctx: Context) -> ModelOut:
    async with ctx.session() as session:
        by = model.Actor(principal.subject, principal.role, client_ip(request))
        return ModelOut.of(await model.unpin(session, by=by))
