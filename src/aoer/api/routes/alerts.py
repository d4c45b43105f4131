"""Alert rules, webhook endpoints, the endpoint test ping and the alert feed (DESIGN §13).

Who may do what: an admin everything; an organisation (a scoped caller whose claims carry
`org_id`) its own endpoints, its own organisation-wide rules and rules for its own tenants;
a tenant reads its own tenant's rules and alerts and changes nothing (rules and endpoints are
the organisation's to manage); the service role nothing here. Every read and write runs in a
session opened with the caller's scope, so Row Level Security limits it again in PostgreSQL.
Every rule or endpoint change is written to the audit log in the same transaction.
"""

import logging
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from aoer.alerts import manage, webhooks
from aoer.alerts import rules as checks
from aoer.alerts.addresses import AddressPolicy
from aoer.api.auth import (
    CurrentPrincipal,
    Principal,
    ensure_org_access,
    ensure_tenant_access,
)
from aoer.api.context import Context
from aoer.api.errors import Forbidden
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.routes.console import cursor_param
from aoer.api.schemas import AlertOut, AlertsOut, Camel, StrictCamel
from aoer.errors import NotFound
from aoer.queue.console import encode_cursor
from aoer.store.alerts import Rule

logger = logging.getLogger(__name__)

router = APIRouter(tags=["alerts"])

MAX_FEED = 500


async def alert_caller(principal: CurrentPrincipal) -> Principal:
    """Every role but the service role reaches these routes; what each may do is decided
    below from the principal's scope, so an organisation role needs nothing more here."""
    if principal.role == "service":
        raise Forbidden("role service may not read or manage alerts (allowed: admin, org, tenant)")
    return principal


Caller = Annotated[Principal, Depends(alert_caller)]


# -- bodies -------------------------------------------------------------------------------


class EndpointIn(StrictCamel):
    url: str = Field(max_length=checks.MAX_URL_CHARS, description="http:// or https:// URL")
    secret: str | None = Field(
        default=None, description="whsec_… (Standard Webhooks); generated when left out"
    )
    org_id: UUID | None = Field(default=None, description="The owning organisation (admin)")


class EndpointOut(Camel):
    id: UUID
    url: str
    org_id: UUID | None
    active: bool
    created_at: datetime
    created_by: str


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="Shown in this answer only")


class EndpointsOut(Camel):
    endpoints: list[EndpointOut]


class RuleIn(StrictCamel):
    kind: str = Field(description="risk_level_up, grade_down, score_drop, stale_data, job_failed")
    tenant_id: UUID | None = None
    org_id: UUID | None = None
    points: Decimal | None = Field(default=None, description="score_drop: points fallen")
    days: int | None = Field(default=None, description="score_drop: over days; stale_data: after")
    endpoint_ids: list[UUID] = Field(default_factory=list, max_length=checks.MAX_CHANNELS)
    emails: list[str] = Field(default_factory=list, max_length=checks.MAX_CHANNELS)


class RuleOut(Camel):
    id: UUID
    scope: str
    kind: str
    org_id: UUID | None
    tenant_id: UUID | None
    points: float | None = None
    days: int | None = None
    endpoint_ids: list[UUID]
    emails: list[str]
    active: bool
    created_at: datetime
    created_by: str

    @classmethod
    def of_rule(cls, rule: Rule, viewer_role: str = "admin") -> "RuleOut":
        """`viewer_role`: who reads it; an administrator's rule reads as made by
        `administrator` to anyone else (its maker is an operator's account, `cli:root`)."""
        return cls(
            id=rule.id,
            scope=rule.scope,
            kind=rule.kind,
            org_id=rule.org_id,
            tenant_id=rule.tenant_id,
            points=rule.params.get("points"),
            days=rule.params.get("days"),
            endpoint_ids=rule.endpoint_ids,
            emails=rule.emails,
            active=rule.active,
            created_at=rule.created_at,
            created_by=manage.maker_seen_by(rule, viewer_role),
        )


class RulesOut(Camel):
    rules: list[RuleOut]


class PingOut(Camel):
    delivered: bool
    status_code: int | None
    error: str | None
    webhook_id: str


# -- who may do what ----------------------------------------------------------------------


def _org_claim(principal: Principal) -> UUID | None:
    """The organisation a scoped caller acts for (None: admin, or a tenant)."""
    scope = principal.scope
    value = scope.claims.get("org_id") if scope is not None else None
    return UUID(value) if value else None


def _ensure_manager(
    principal: Principal, doing: str = "not change rules or endpoints"
) -> UUID | None:
    """Admins and organisations manage rules and endpoints; the organisation's id, if any."""
    org = _org_claim(principal)
    if principal.role == "admin" or org is not None:
        return org
    raise Forbidden(
        f"role {principal.role} may read alerts and rules, {doing} (allowed: admin, org)"
    )


async def _ensure_filters(
    principal: Principal, tenant_id: UUID | None, org_id: UUID | None
) -> None:
    """A list filtered by a tenant or an organisation not the caller's is a 403 naming it."""
    if tenant_id is not None:
        await ensure_tenant_access(principal, tenant_id)
    if org_id is not None:
        ensure_org_access(principal, org_id)


def _actor(principal: Principal, request: Request) -> manage.Actor:
    """The caller as the audit log names it; refuses callers who may not manage alerts."""
    own_org = _ensure_manager(principal)
    ip = request.client.host if request.client else None
    return manage.Actor(principal.subject, principal.role, own_org, ip)


# -- endpoints ----------------------------------------------------------------------------


@router.get(
    "/api/alerts/endpoints",
    response_model=EndpointsOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="Webhook endpoints (admin: all or one organisation's; org: its own)",
)
async def list_endpoints(
    principal: Caller, ctx: Context, org_id: Annotated[UUID | None, Query(alias="orgId")] = None
) -> EndpointsOut:
    _ensure_manager(principal, "not webhook endpoints")
    await _ensure_filters(principal, None, org_id)
    async with ctx.session(principal) as session:
        found = await session.alerts.endpoints(org_id)
    return EndpointsOut(endpoints=[EndpointOut.of(e) for e in found])


@router.post(
    "/api/alerts/endpoints",
    status_code=201,
    response_model=EndpointCreatedOut,
    responses=error_responses(*AUTHENTICATED, 404, *WITH_JSON_BODY),
    summary="Add a webhook endpoint; its whsec_ secret is shown in this answer",
)
async def create_endpoint(
    principal: Caller,
    _: Annotated[None, Depends(require_json)],
    body: EndpointIn,
    ctx: Context,
    request: Request,
) -> EndpointCreatedOut:
    actor = _actor(principal, request)
    async with ctx.session(principal) as session:
        endpoint = await manage.add_endpoint(
            session,
            actor,
            url=body.url,
            secret=body.secret,
            org_id=body.org_id,
            addresses=AddressPolicy.from_settings(ctx.settings),
        )
    return EndpointCreatedOut.of(endpoint)


@router.delete(
    "/api/alerts/endpoints/{endpoint_id}",
    status_code=204,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    summary="Remove an endpoint: its pending deliveries end failed, rules stop naming it",
)
async def delete_endpoint(
    endpoint_id: UUID, principal: Caller, ctx: Context, request: Request
) -> Response:
    actor = _actor(principal, request)
    async with ctx.session(principal) as session:
        await manage.remove_endpoint(session, actor, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/api/alerts/endpoints/{endpoint_id}/test",
    response_model=PingOut,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    summary="Send a signed `ping` to the endpoint now and report what it answered",
)
async def test_endpoint(endpoint_id: UUID, principal: Caller, ctx: Context) -> PingOut:
    _ensure_manager(principal)
    async with ctx.session(principal) as session:
        found = await session.alerts.endpoints_by_id([endpoint_id])
    if not found:
        raise NotFound(f"no alert endpoint {endpoint_id}")
    endpoint = found[0]
    msg_id, attempt = await webhooks.ping(
        endpoint.url,
        endpoint.secret,
        str(endpoint.id),
        ctx.settings.alert_http_timeout_s,
        AddressPolicy.for_owner(ctx.settings, endpoint.org_id),
    )
    return PingOut(
        delivered=attempt.ok,
        status_code=attempt.status_code,
        error=attempt.error,
        webhook_id=msg_id,
    )


# -- rules --------------------------------------------------------------------------------


@router.get(
    "/api/alerts/rules",
    response_model=RulesOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="Alert rules the caller may see (a tenant: its own tenant's)",
)
async def list_rules(
    principal: Caller,
    ctx: Context,
    tenant_id: Annotated[
        UUID | None,
        Query(alias="tenantId", description="Rules watching it: its own and its organisation's"),
    ] = None,
    org_id: Annotated[UUID | None, Query(alias="orgId")] = None,
) -> RulesOut:
    await _ensure_filters(principal, tenant_id, org_id)
    async with ctx.session(principal) as session:
        found = await session.alerts.rules(org_id=org_id, tenant_id=tenant_id)
    return RulesOut(rules=[RuleOut.of_rule(r, principal.role) for r in found])


@router.post(
    "/api/alerts/rules",
    status_code=201,
    response_model=RuleOut,
    responses=error_responses(*AUTHENTICATED, 404, 409, *WITH_JSON_BODY),
    summary="Add an alert rule for one tenant or a whole organisation",
    description="409 when a rule already raises the same kind for the same tenant or"
    " organisation with the same parameters and tells one of the same channels (or both"
    " tell none): each alert would be sent twice.",
)
async def create_rule(
    principal: Caller,
    _: Annotated[None, Depends(require_json)],
    body: RuleIn,
    ctx: Context,
    request: Request,
) -> RuleOut:
    actor = _actor(principal, request)
    request_ = manage.RuleRequest(
        kind=body.kind,
        tenant_id=body.tenant_id,
        org_id=body.org_id,
        points=body.points,
        days=body.days,
        endpoint_ids=body.endpoint_ids,
        emails=body.emails,
    )
    async with ctx.session(principal) as session:
        rule = await manage.add_rule(session, actor, request_)
    return RuleOut.of_rule(rule)


@router.delete(
    "/api/alerts/rules/{rule_id}",
    status_code=204,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    summary="Remove an alert rule (its alerts stay in the feed)",
)
async def delete_rule(rule_id: UUID, principal: Caller, ctx: Context, request: Request) -> Response:
    actor = _actor(principal, request)
    async with ctx.session(principal) as session:
        await manage.remove_rule(session, actor, rule_id)
    return Response(status_code=204)


# -- the feed -----------------------------------------------------------------------------


@router.get(
    "/api/alerts",
    response_model=AlertsOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="Alerts, newest first, with each delivery's state",
)
async def feed(
    principal: Caller,
    ctx: Context,
    tenant_id: Annotated[UUID | None, Query(alias="tenantId")] = None,
    org_id: Annotated[UUID | None, Query(alias="orgId")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; alerts at or after")] = None,
    before: Annotated[
        str | None, Query(max_length=200, description="`nextBefore` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FEED)] = 100,
) -> AlertsOut:
    await _ensure_filters(principal, tenant_id, org_id)
    before_at, before_id = cursor_param(before)
    after = (before_at, before_id) if before_at and before_id else None
    async with ctx.session(principal) as session:
        found = await session.alerts.feed(
            tenant_id=tenant_id, org_id=org_id, since=since, before=after, limit=limit
        )
    last = found.last
    return AlertsOut(
        alerts=[AlertOut.of(a) for a in found.rows],
        next_before=encode_cursor(last.created_at, last.id) if last else None,
    )
