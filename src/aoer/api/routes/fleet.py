"""GET /api/fleet: the dealerships an administrator or an organisation sees, a page at a time,
each with its score, grade, risk and 7-day change: what the fleet page lists, for reports and
scripts (an agency's fifty clients in one call, not fifty calls of /api/aoer/summary)."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from aoer.api.auth import Principal, ensure_org_access, require_roles
from aoer.api.context import Context
from aoer.api.responses import AUTHENTICATED, error_responses
from aoer.api.schemas import Camel
from aoer.store.fleet import FleetFilter, SortKey, sorted_descending
from aoer.types import Grade, RiskLevel

router = APIRouter(tags=["fleet"])

FleetReader = Annotated[Principal, Depends(require_roles("admin", "org"))]
PER_PAGE_MAX = 500
NAME_FILTER_MAX = 100


class FleetRowOut(Camel):
    tenant_id: UUID
    name: str
    city: str | None
    active: bool
    aoer_score: float | None = Field(description="None: never computed")
    visibility_risk: float | None
    grade: Grade | None
    risk_level: RiskLevel | None
    last_updated: datetime | None
    # Named as the summary names it (the camel-case generator would make it change7D).
    change_7d: float | None = Field(
        alias="change7d", description="Score now minus 7 days ago (None: no score then)"
    )


class FleetOut(Camel):
    dealerships: list[FleetRowOut]
    matching: int = Field(description="Dealerships matching the filters, on every page")
    page: int
    pages: int
    per_page: int
    sort: SortKey = Field(description="As applied: by risk when change7d was refused")
    descending: bool
    sort_refused: str | None = Field(
        default=None, description="Why the asked order was not applied, when it was not"
    )


@router.get(
    "/api/fleet",
    response_model=FleetOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="The dealerships, a page at a time, with score, grade, risk and 7-day change",
    description="Admins see every dealership (or one organisation's with `orgId`); an "
    "organisation its own. Filters and orders as the fleet page: never-computed dealerships, "
    "and by score or risk those with no data, come last either way; `grade=none` lists the "
    "never computed. Ordering by `change7d` is offered up to 20,000 matching dealerships.",
)
async def fleet(
    principal: FleetReader,
    ctx: Context,
    org_id: Annotated[UUID | None, Query(alias="orgId")] = None,
    q: Annotated[
        str | None, Query(max_length=NAME_FILTER_MAX, description="A part of the name")
    ] = None,
    grade: Annotated[
        Literal["Excellent", "Good", "Fair", "Poor", "No data", "none"] | None,
        Query(description="`none`: the never computed (store.fleet.NEVER_COMPUTED)"),
    ] = None,
    risk_level: Annotated[RiskLevel | None, Query(alias="riskLevel")] = None,
    sort: SortKey = "risk",
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(
            description="Default: A to Z by name, the largest drops first by change7d, "
            "else descending"
        ),
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=PER_PAGE_MAX)] = 100,
) -> FleetOut:
    if org_id is not None:
        ensure_org_access(principal, org_id)  # 403 naming another's, never an empty page
    descending = sorted_descending(sort, order)
    f = FleetFilter(
        name=(q or "").strip() or None,
        grade=grade,
        risk_level=risk_level,
        sort=sort,
        descending=descending,
        page=page,
        per_page=per_page,
        org_id=principal.org_id if principal.role == "org" else org_id,
    )
    async with ctx.session(principal) as session:
        found = await session.fleet.page(f)
    applied = found.filter
    return FleetOut(
        dealerships=[FleetRowOut.of(r) for r in found.rows],
        matching=found.matching,
        page=applied.page,
        pages=found.pages,
        per_page=applied.per_page,
        sort=applied.sort,
        descending=applied.descending,
        sort_refused=(
            f"change7d orders at most {found.change_sort_max:,} dealerships and"
            f" {found.matching:,} match: ordered by risk"
            if found.change_sort_refused
            else None
        ),
    )
