"""API keys over HTTP (DESIGN §12): admins manage every key, an organisation its own and its
dealerships' keys; the key itself is in the creation's answer only."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from aoer.api.auth import Principal, ensure_tenant_access, require_roles
from aoer.api.context import ApiContext, Context
from aoer.api.errors import Forbidden
from aoer.api.keys import expiry_after
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import KeyIn, KeyOut, KeysOut, NewKeyOut
from aoer.api.trail import audit_entry
from aoer.errors import NotFound

router = APIRouter(tags=["keys"])

KeyManager = Annotated[Principal, Depends(require_roles("admin", "org"))]


@router.get(
    "/api/keys",
    response_model=KeysOut,
    responses=error_responses(*AUTHENTICATED),
    summary="List API keys (admin: all; an organisation: its own and its dealerships')",
)
async def keys(principal: KeyManager, ctx: Context) -> KeysOut:
    async with ctx.session(principal) as session:
        found = await session.keys.list(org_id=principal.org_id)
    return KeysOut(keys=[KeyOut.of(k) for k in found])


@router.post(
    "/api/keys",
    status_code=201,
    response_model=NewKeyOut,
    responses=error_responses(*AUTHENTICATED, 404, *WITH_JSON_BODY),
    summary="Create an API key; the answer is the only place the key is ever shown",
    description="An organisation creates `org` keys for itself and `tenant` keys for its "
    "dealerships. `expiresInDays` left out: the key never expires (revoke it instead).",
)
async def create_key(
    request: Request,
    principal: KeyManager,
    _: Annotated[None, Depends(require_json)],
    body: KeyIn,
    ctx: Context,
) -> NewKeyOut:
    return await issue_api_key(ctx, request, principal, body)


async def issue_api_key(
    ctx: ApiContext, request: Request, principal: Principal, body: KeyIn
) -> NewKeyOut:
    """Create a key as `principal` may (the API's and the dashboard's forms), audited."""
    if principal.role not in ("admin", "org"):
        raise Forbidden(f"role {principal.role} may not manage API keys (allowed: admin, org)")
    org_id = body.org_id
    if principal.role == "org":
        if body.scope not in ("org", "tenant"):
            raise Forbidden(f"an organisation may not create {body.scope} keys")
        if body.scope == "org":
            org_id = org_id or principal.org_id
            if org_id != principal.org_id:
                raise Forbidden(f"organisation {org_id} is not this token's organisation")
        elif body.tenant_id is not None:
            await ensure_tenant_access(principal, body.tenant_id)
    tenant_org = None
    async with ctx.session() as session, session.transaction():
        issued = await session.keys.issue(
            body.scope,
            org_id=org_id,
            tenant_id=body.tenant_id,
            name=body.name,
            expires_at=expiry_after(body.expires_in_days),
            created_by=principal.subject,
            issued_by_org=principal.org_id if principal.role == "org" else None,
        )
        record = issued.record
        if record.tenant_id is not None:
            owner = await session.organizations.of_tenant(record.tenant_id)
            tenant_org = owner.org_id if owner else None
        await session.audit.record(
            audit_entry(
                request,
                principal,
                "key.create",
                org_id=record.org_id or tenant_org,
                tenant_id=record.tenant_id,
                target=str(record.id),
                details={"scope": record.scope, "name": record.name, "prefix": record.prefix},
            )
        )
    return NewKeyOut(
        id=record.id,
        key=issued.key,
        scope=record.scope,
        org_id=record.org_id,
        tenant_id=record.tenant_id,
        name=record.name,
        expires_at=record.expires_at,
        created_at=record.created_at,
    )


@router.delete(
    "/api/keys/{key_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    summary="Revoke an API key: refused by every API process within 5 s",
)
async def revoke_key(
    request: Request, key_id: UUID, principal: KeyManager, ctx: Context
) -> Response:
    await revoke_api_key(ctx, request, principal, key_id)
    return Response(status_code=204)


async def revoke_api_key(
    ctx: ApiContext, request: Request, principal: Principal, key_id: UUID
) -> None:
    """Revoke a key the caller may see (404 otherwise), audited; refused here at once."""
    if principal.role not in ("admin", "org"):
        raise Forbidden(f"role {principal.role} may not manage API keys (allowed: admin, org)")
    # Under an organisation's scope another organisation's key is invisible: 404 alike.
    async with ctx.session(principal) as session, session.transaction():
        revoked = await session.keys.revoke(key_id)
        if revoked is None:
            known = await session.keys.get(key_id)
            if known is None:
                raise NotFound(f"unknown API key {key_id}")
        else:
            owner = (
                await session.organizations.of_tenant(revoked.tenant_id)
                if revoked.tenant_id
                else None
            )
            await session.audit.record(
                audit_entry(
                    request,
                    principal,
                    "key.revoke",
                    org_id=revoked.org_id or (owner.org_id if owner else None),
                    tenant_id=revoked.tenant_id,
                    target=str(key_id),
                    details={"scope": revoked.scope, "prefix": revoked.prefix},
                )
            )
    ctx.keys.revoked(key_id)
