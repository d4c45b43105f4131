"""Organisations (dealer groups, agencies): admins create them and see all; an organisation
sees itself (DESIGN §12)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from aoer.api.auth import Principal, require_admin, require_roles
from aoer.api.context import Context
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import OrgIn, OrgOut, OrgsOut
from aoer.api.trail import audit_entry

router = APIRouter(tags=["organisations"])


@router.get(
    "/api/orgs",
    response_model=OrgsOut,
    responses=error_responses(*AUTHENTICATED),
    summary="List organisations (an organisation sees only itself)",
)
async def organizations(
    principal: Annotated[Principal, Depends(require_roles("admin", "org"))], ctx: Context
) -> OrgsOut:
    async with ctx.session(principal) as session:
        found = await session.organizations.all()
    return OrgsOut(organizations=[OrgOut.of(o) for o in found])


@router.post(
    "/api/orgs",
    status_code=201,
    response_model=OrgOut,
    responses=error_responses(*AUTHENTICATED, 409, *WITH_JSON_BODY),
    summary="Create an organisation (admin); 409 when the name is taken, ignoring case",
)
async def create_organization(
    request: Request,
    principal: Annotated[Principal, Depends(require_admin)],
    _: Annotated[None, Depends(require_json)],
    body: OrgIn,
    ctx: Context,
) -> OrgOut:
    async with ctx.session() as session, session.transaction():
        org = await session.organizations.create(body.name)
        await session.audit.record(
            audit_entry(request, principal, "org.create", org_id=org.id, target=org.name)
        )
    return OrgOut.of(org)
