"""Register, list and move dealerships: admins register and move them between organisations;
organisations and tenants see only their own."""

import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from aoer import queue
from aoer.api.auth import Principal, ensure_org_access, require_admin, require_roles
from aoer.api.context import Context
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import TenantIn, TenantOut, TenantPatch, TenantsOut
from aoer.api.trail import audit_entry, client_ip
from aoer.errors import UnknownTenant

logger = logging.getLogger(__name__)

router = APIRouter(tags=["tenants"])

MAX_PAGE = 1000


@router.get(
    "/api/tenants",
    response_model=TenantsOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="List dealerships (an organisation sees its own, a tenant token only itself)",
)
async def tenants(
    principal: Annotated[Principal, Depends(require_roles("admin", "service", "org", "tenant"))],
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    org_id: Annotated[
        UUID | None, Query(alias="orgId", description="Only this organisation's dealerships")
    ] = None,
) -> TenantsOut:
    # No tenant filter here: for tenant and organisation callers Row Level Security leaves
    # only their rows.
    if org_id is not None:
        ensure_org_access(principal, org_id)
    async with ctx.session(principal) as session:
        found = await session.tenants.list(limit=limit, offset=offset, org_id=org_id)
    return TenantsOut(tenants=[TenantOut.of(t) for t in found])


@router.post(
    "/api/tenants",
    status_code=201,
    response_model=TenantOut,
    responses=error_responses(*AUTHENTICATED, 409, *WITH_JSON_BODY),
    summary="Register a dealership (admin), optionally in an organisation (`orgId`)",
)
async def register(
    request: Request,
    principal: Annotated[Principal, Depends(require_admin)],
    _: Annotated[None, Depends(require_json)],
    body: TenantIn,
    ctx: Context,
) -> TenantOut:
    async with ctx.session() as session, session.transaction():
        tenant = await session.tenants.create(
            body.name,
            tenant_id=body.id,
            domain=body.domain,
            city=body.city,
            region=body.region,
            active=body.active,
            org_id=body.org_id,
        )
        await session.audit.record(
            audit_entry(
                request,
                principal,
                "tenant.create",
                org_id=tenant.org_id,
                tenant_id=tenant.id,
                target=tenant.name,
            )
        )
    logger.info(
        "tenant %s (%s) registered by %s",
        tenant.id,
        tenant.name,
        principal.subject,
        extra={"tenant_id": str(tenant.id), "action": "tenant_create"},
    )
    return TenantOut.of(tenant)


@router.patch(
    "/api/tenants/{tenant_id}",
    response_model=TenantOut,
    responses=error_responses(*AUTHENTICATED, 404, 409, *WITH_JSON_BODY),
    summary="Move, rename or (de)activate a dealership (admin)",
    description="`orgId` moves it (null: out of every organisation): the old organisation "
    "loses access on the very next request (cached summaries included), the new one gains "
    "it. `name` renames it; `active: false` leaves it out of the scheduled refresh, "
    "cancels its waiting job and refuses it new jobs (its data and history stay). Audited as "
    "tenant.move and tenant.change.",
)
async def move(
    request: Request,
    tenant_id: UUID,
    principal: Annotated[Principal, Depends(require_admin)],
    _: Annotated[None, Depends(require_json)],
    body: TenantPatch,
    ctx: Context,
) -> TenantOut:
    ip = client_ip(request)
    moved = None
    async with ctx.session() as session, session.transaction():
        # The move first: a new name is recorded in the trail of the organisation that holds
        # the dealership afterwards, never of the one it is leaving.
        if "org_id" in body.model_fields_set:
            moved = await session.tenants.move(tenant_id, body.org_id)
            if moved is None:
                raise UnknownTenant(f"unknown tenant {tenant_id}")
            for move_entry in moved.audit_entries(principal.subject, principal.role, ip):
                await session.audit.record(move_entry)
        if "name" in body.model_fields_set or "active" in body.model_fields_set:
            changed = await queue.change_tenant(
                session, tenant_id, name=body.name, active=body.active
            )
            if changed is None:
                raise UnknownTenant(f"unknown tenant {tenant_id}")
            entry = changed.audit_entry(principal.subject, principal.role, ip)
            if entry.details:
                await session.audit.record(entry)
        tenant = await session.tenants.get(tenant_id)
    assert tenant is not None
    if moved is not None:
        # This process forgets the cached body at once (others on the move's NOTIFY): it
        # quotes the old organisation's medians, which the new one must not see.
        await ctx.cache.evict([tenant_id])
        for key_id in moved.revoked_key_ids:
            ctx.keys.revoked(key_id)  # refused here at once; elsewhere within the key refresh
        logger.info(
            "tenant %s moved from organisation %s to %s by %s",
            tenant_id,
            moved.old_org_id,
            moved.new_org_id,
            principal.subject,
            extra={"tenant_id": str(tenant_id), "action": "tenant_move"},
        )
    return TenantOut.of(tenant)
