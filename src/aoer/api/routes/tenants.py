"""Register and list dealerships: admins register, tenants see only their own."""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from aoer.api.auth import Principal, require_admin, require_roles
from aoer.api.context import Context
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import TenantIn, TenantOut, TenantsOut

logger = logging.getLogger(__name__)

router = APIRouter(tags=["tenants"])

MAX_PAGE = 1000


@router.get(
    "/api/tenants",
    response_model=TenantsOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="List dealerships (a tenant token sees only its own)",
)
async def tenants(
    principal: Annotated[Principal, Depends(require_roles("admin", "service", "tenant"))],
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> TenantsOut:
    # No tenant filter here: for tenant tokens Row Level Security leaves only their row.
    async with ctx.session(principal) as session:
        found = await session.tenants.list(limit=limit, offset=offset)
    return TenantsOut(tenants=[TenantOut.of(t) for t in found])


@router.post(
    "/api/tenants",
    status_code=201,
    response_model=TenantOut,
    responses=error_responses(*AUTHENTICATED, 409, *WITH_JSON_BODY),
    summary="Register a dealership (admin)",
)
async def register(
    principal: Annotated[Principal, Depends(require_admin)],
    _: Annotated[None, Depends(require_json)],
    body: TenantIn,
    ctx: Context,
) -> TenantOut:
    async with ctx.session() as session:
        tenant = await session.tenants.create(
            body.name,
            tenant_id=body.id,
            domain=body.domain,
            city=body.city,
            region=body.region,
            active=body.active,
        )
    logger.info(
        "tenant %s (%s) registered by %s",
        tenant.id,
        tenant.name,
        principal.subject,
        extra={"tenant_id": str(tenant.id), "action": "tenant_create"},
    )
    return TenantOut.of(tenant)
