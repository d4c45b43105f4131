"""The dashboard's pages: one dealership, the admin fleet view, their live data and assets.

Pages use the API's auth (the session cookie set by `GET /login`, or a bearer token) and its
tenant-scoped connections, so Row Level Security holds here as it does for the JSON API.
Failures on pages become HTML pages (401, 403, 404), never JSON and never another tenant's data.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Final, cast
from urllib.parse import urlencode
from uuid import UUID

from croniter import croniter
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from aoer.api.auth import (
    BearerCredentials,
    Principal,
    SessionCookie,
    current_principal,
    may_access,
    require_roles,
)
from aoer.api.context import Context
from aoer.api.errors import Unauthorized
from aoer.config import Settings
from aoer.constants import JOB_STATUSES, PRIORITIES, RECOMPUTE_TICK, WORKER_STALE_S
from aoer.dashboard import data
from aoer.dashboard.render import assets, page

router = APIRouter(include_in_schema=False)

STATUS_LABELS: Final = {
    "queued": "Pending",
    "processing": "Processing",
    "completed": "Completed",
    "failed": "Failed",
}
STATUSES: Final = tuple((status, STATUS_LABELS[status]) for status in JOB_STATUSES)
PRIORITY_ORDER: Final = tuple(reversed(PRIORITIES))  # urgent first
MAX_NAME_FILTER_CHARS: Final = 100
IMMUTABLE: Final = "public, max-age=31536000, immutable"


async def page_principal(
    request: Request, bearer: BearerCredentials, cookie: SessionCookie
) -> Principal | str:
    """The signed-in caller, or why there is none (pages answer with a 401 page instead)."""
    try:
        return await current_principal(request, bearer, cookie)
    except Unauthorized as exc:
        return str(exc)


PagePrincipal = Annotated[Principal | str, Depends(page_principal)]


def sign_in_page(reason: str) -> Response:
    return page(
        "error.html",
        401,
        heading="Sign in to see the dashboard",
        message=f"You are not signed in ({reason}).",
        show_login_help=True,
    )


def denied_page(principal: Principal, message: str) -> Response:
    return page(
        "error.html",
        403,
        heading="You do not have access to this page",
        message=message,
        show_login_help=False,
        principal=principal,
    )


def not_found_page(principal: Principal, message: str) -> Response:
    return page(
        "error.html",
        404,
        heading="Not found",
        message=message,
        show_login_help=False,
        principal=principal,
    )


def next_tick(settings: Settings, now: datetime | None = None) -> datetime | None:
    """When the in-worker scheduler fires next (None when it is turned off)."""
    if not settings.run_cron:
        return None
    start = now or datetime.now(UTC)
    following: datetime = croniter(settings.cron, start).get_next(datetime)
    return following


@router.get("/dashboard")
async def home(who: PagePrincipal) -> Response:
    """Admins and organisations land on the fleet (an organisation's: its own dealerships),
    tenant users on their dealership."""
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role in ("admin", "org"):
        return RedirectResponse("/dashboard/fleet", status_code=303)
    if who.role == "tenant" and who.tenant_id is not None:
        return RedirectResponse(f"/dashboard/tenant/{who.tenant_id}", status_code=303)
    return denied_page(who, "Service tokens are for machines; sign in as an admin or a tenant.")


@router.get("/dashboard/tenant/{tenant_id}")
async def tenant_page(tenant_id: str, who: PagePrincipal, ctx: Context) -> Response:
    if isinstance(who, str):
        return sign_in_page(who)
    try:
        tid = UUID(tenant_id)
    except ValueError:
        return not_found_page(who, "There is no dealership at this address.")
    if who.role == "service" or not await may_access(who, tid):
        # Same answer whether or not the dealership exists: nothing about it leaks.
        return denied_page(who, "This dealership belongs to another account.")
    async with ctx.session(who) as session:
        view = await data.tenant_view(session, tid)
        engines = await data.engine_report(session, tid) if view is not None else None
    if view is None or engines is None:
        return not_found_page(who, "There is no dealership with this id.")
    return page(
        "tenant.html",
        principal=who,
        view=view,
        engines=engines,
        voice_bars=data.voice_bars(engines),
        engine_label=data.engine_label,
        active_nav="tenant",
    )


def fleet_filter(
    q: str | None,
    grade: str | None,
    risk: str | None,
    sort: str | None,
    dir: str | None,
    page: int,
    org_id: UUID | None = None,
) -> data.FleetFilter:
    """Query parameters → a filter; unknown values fall back to the defaults."""
    name = (q or "").strip()[:MAX_NAME_FILTER_CHARS] or None
    valid_grade = grade if grade in data.GRADES or grade == data.NEVER_COMPUTED else None
    chosen = cast(data.SortKey, sort) if sort in data.SORT_KEYS else "risk"
    descending = data.sorted_descending(chosen, dir)
    return data.FleetFilter(
        name=name,
        grade=valid_grade,
        risk_level=risk if risk in data.RISK_LEVELS else None,
        sort=chosen,
        descending=descending,
        page=max(page, 1),
        org_id=org_id,
    )


def fleet_url_builder(f: data.FleetFilter) -> Any:
    current: dict[str, object] = {
        "q": f.name,
        "grade": f.grade,
        "risk": f.risk_level,
        "sort": f.sort,
        "dir": "desc" if f.descending else "asc",
        "page": f.page,
        "org": f.org_id,
    }

    def fleet_url(**changes: object) -> str:
        params = {k: v for k, v in {**current, **changes}.items() if v not in (None, "")}
        return "/dashboard/fleet?" + urlencode(params)

    return fleet_url


def org_choice(who: Principal, org: str | None) -> UUID | None:
    """The organisation the fleet is limited to: an organisation's own; an admin's choice
    (`?org=`, an unknown value meaning none)."""
    if who.role == "org":
        return who.org_id
    try:
        return UUID(org) if org else None
    except ValueError:
        return None


@router.get("/dashboard/fleet")
async def fleet_page(
    who: PagePrincipal,
    ctx: Context,
    q: str | None = None,
    grade: str | None = None,
    risk: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
    org: str | None = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role not in ("admin", "org"):
        return denied_page(who, "The fleet view is for administrators and organisations.")
    org_id = org_choice(who, org)
    f = fleet_filter(q, grade, risk, sort, dir, page_number, org_id)
    organization = None
    async with ctx.session(who) as session:
        fleet = await data.fleet_page(session, f)
        tick = RECOMPUTE_TICK if who.role == "admin" else None
        stats = await data.fleet_stats(session, tick, org_id)
        organizations = await session.organizations.all()
        voices = await data.share_of_voice(session, [r.tenant_id for r in fleet.rows])
        # The pause is the operator's (and only an administrator can lift it).
        queue_state = await session.console.queue_state() if who.role == "admin" else None
        live_workers = (
            sum(w.alive for w in await session.console.workers(WORKER_STALE_S))
            if who.role == "admin"
            else None
        )
    if org_id is not None:
        organization = next((o for o in organizations if o.id == org_id), None)
    return page(
        "fleet.html",
        principal=who,
        active_nav="fleet",
        page=fleet,
        stats=stats,
        voices=voices,
        queue_state=queue_state,
        live_workers=live_workers,
        depth={(d.status, d.priority): d.jobs for d in stats.depth},
        statuses=STATUSES,
        priorities=PRIORITY_ORDER,
        grades=data.GRADES,
        risk_levels=data.RISK_LEVELS,
        next_tick=next_tick(ctx.settings) if who.role == "admin" else None,
        cron=ctx.settings.cron,
        fleet_url=fleet_url_builder(fleet.filter),
        ascending_first=data.ASCENDING_FIRST,
        organization=organization,
        organizations=organizations if who.role == "admin" else [],
        stats_url="/dashboard/fleet/stats" + (f"?org={org_id}" if org_id else ""),
    )


@router.get("/dashboard/alerts")
async def alerts_page(who: PagePrincipal, ctx: Context) -> Response:
    """Rules, endpoints and recent alerts; admins and organisations manage, tenants read."""
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role == "service":
        return denied_page(who, "Service tokens are for machines; sign in as an admin or a tenant.")
    scope = who.scope
    can_manage = who.role == "admin" or (scope is not None and "org_id" in scope.claims)
    async with ctx.session(who) as session:
        org_id = who.org_id if who.role == "org" else None
        view = await data.alerts_view(
            session, can_manage=can_manage, viewer_role=who.role, org_id=org_id
        )
    return page(
        "alerts.html",
        principal=who,
        active_nav="alerts",
        can_manage=can_manage,
        kinds=data.ALERT_KIND_LABELS,
        rules=view.rules,
        endpoints=view.endpoints,
        tenants=view.tenants,
        orgs=view.orgs,
        recent=view.recent,
        departed=view.departed,
        tenant_names=view.tenant_names,
        org_names=view.org_names,
        view_makers=view.makers,
        endpoint_hosts=view.endpoint_hosts,
    )


@router.get("/dashboard/fleet/stats")
async def fleet_stats(
    who: Annotated[Principal, Depends(require_roles("admin", "org"))],
    ctx: Context,
    org: str | None = None,
) -> dict[str, Any]:
    """The fleet page's live numbers (JSON; the page refreshes them in place)."""
    org_id = org_choice(who, org)
    async with ctx.session(who) as session:
        tick_name = RECOMPUTE_TICK if who.role == "admin" else None
        stats = await data.fleet_stats(session, tick_name, org_id)
    depth: dict[str, dict[str, int]] = {}
    for d in stats.depth:
        depth.setdefault(d.status, {})[d.priority] = d.jobs
    tick = next_tick(ctx.settings) if who.role == "admin" else None
    return {
        "totals": {
            "tenants": stats.totals.tenants,
            "inactive": stats.totals.inactive,
            "computed": stats.totals.computed,
            "noData": stats.totals.no_data,
            "meanScore": float(stats.totals.mean_score)
            if stats.totals.mean_score is not None
            else None,
            "byRisk": stats.totals.by_risk,
        },
        "depth": depth,
        "throughput": {
            "lastMinute": stats.throughput.last_minute,
            "lastHour": stats.throughput.last_hour,
        },
        "failures": [
            {
                "createdAt": f.created_at.isoformat(),
                "tenantId": str(f.tenant_id),
                "name": f.name,
                "errorMessage": f.error_message,
                "retryCount": f.retry_count,
                "willRetry": f.will_retry,
            }
            for f in stats.failures
        ],
        "nextTick": tick.isoformat() if tick else None,
        "lastTick": stats.last_tick.fired_at.isoformat() if stats.last_tick else None,
    }


@router.get("/dashboard/static/{name}")
async def static_file(name: str, v: str | None = None) -> Response:
    """The dashboard's own CSS, JS and icon; only files shipped in the package exist."""
    asset = assets().get(name)
    if asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    cache_control = IMMUTABLE if v == asset.version else "no-cache"
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={
            "Cache-Control": cache_control,
            "ETag": f'"{asset.version}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
