"""The audit log over HTTP (DESIGN §12): admins read every row, an organisation its own;
newest first, keyset-paged on id."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from aoer.api.auth import Principal, ensure_org_access, require_roles
from aoer.api.context import Context
from aoer.api.responses import AUTHENTICATED, error_responses
from aoer.api.schemas import AuditOut, AuditPageOut
from aoer.store.audit import AUDIT_PAGE_MAX

router = APIRouter(tags=["audit"])

DEFAULT_AUDIT_PAGE = 100
ACTION_PATTERN = r"^[a-z][a-z0-9_.]*$"


@router.get(
    "/api/audit",
    response_model=AuditPageOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="Sensitive operations, newest first (admin; an organisation: its own)",
    description="Pass `nextBefore` of one page as `before` to read the next, older one.",
)
async def audit(
    principal: Annotated[Principal, Depends(require_roles("admin", "org"))],
    ctx: Context,
    org_id: Annotated[UUID | None, Query(alias="orgId")] = None,
    tenant_id: Annotated[UUID | None, Query(alias="tenantId")] = None,
    action: Annotated[str | None, Query(max_length=100, pattern=ACTION_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_MAX)] = DEFAULT_AUDIT_PAGE,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> AuditPageOut:
    if org_id is not None:
        ensure_org_access(principal, org_id)
    # An organisation's scope (Row Level Security) leaves only its own rows.
    async with ctx.session(principal) as session:
        rows = await session.audit.page(
            org_id=org_id, tenant_id=tenant_id, action=action, before=before, limit=limit
        )
    return AuditPageOut(
        entries=[AuditOut.of(r) for r in rows],
        next_before=rows[-1].id if len(rows) == limit else None,
    )
