"""The dashboard's API-key page (`/dashboard/keys`): admins manage every key, an organisation
its own and its dealerships'. Forms post with the session cookie, so the API's same-origin
check refuses them from any other site; a new key is shown on the answer page, once."""

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from aoer.api.auth import Principal
from aoer.api.context import ApiContext, Context
from aoer.api.errors import HttpError, status_for
from aoer.api.routes.keys import issue_api_key, revoke_api_key
from aoer.api.schemas import KeyIn, NewKeyOut
from aoer.dashboard.render import page
from aoer.dashboard.routes import PagePrincipal, denied_page, sign_in_page
from aoer.errors import AoerError, InvalidInput
from aoer.store.keys import ApiKey

router = APIRouter(include_in_schema=False)

FORM_TYPE: Final = "application/x-www-form-urlencoded"
MAX_FORM_BYTES: Final = 4096
NO_STORE: Final = {"Cache-Control": "no-store"}  # a page showing a key is never cached
MANAGERS: Final = ("admin", "org")


@router.get("/dashboard/keys")
async def keys_page(who: PagePrincipal, ctx: Context) -> Response:
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role not in MANAGERS:
        return denied_page(who, "API keys are managed by administrators and organisations.")
    return await _render(ctx, who)


@router.post("/dashboard/keys")
async def create_key(request: Request, who: PagePrincipal, ctx: Context) -> Response:
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role not in MANAGERS:
        return denied_page(who, "API keys are managed by administrators and organisations.")
    try:
        form = await _form(request)
        body = KeyIn.model_validate(
            {
                "scope": form.get("scope") or None,
                "orgId": form.get("orgId") or None,
                "tenantId": form.get("tenantId") or None,
                "name": form.get("name") or None,
                "expiresInDays": form.get("expiresInDays") or None,
            }
        )
        made = await issue_api_key(ctx, request, who, body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return await _render(ctx, who, error=f"The key was not created ({problems}).", status=422)
    except AoerError as exc:
        return await _render(ctx, who, error=f"The key was not created: {exc}", status=_status(exc))
    return await _render(ctx, who, new_key=made)


@router.post("/dashboard/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, who: PagePrincipal, ctx: Context) -> Response:
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role not in MANAGERS:
        return denied_page(who, "API keys are managed by administrators and organisations.")
    try:
        await revoke_api_key(ctx, request, who, UUID(key_id))
    except ValueError:
        return await _render(ctx, who, error="There is no key at this address.", status=404)
    except AoerError as exc:
        return await _render(ctx, who, error=f"The key was not revoked: {exc}", status=_status(exc))
    return await _render(ctx, who, notice=f"Key {key_id} revoked: refused everywhere within 5 s.")


def _status(exc: AoerError) -> int:
    return exc.status_code if isinstance(exc, HttpError) else status_for(exc)


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise InvalidInput(f"send the key form as {FORM_TYPE}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"the key form is over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode(), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the key form cannot be read") from None
    return {k: v[0].strip() for k, v in fields.items() if v}


async def _render(
    ctx: ApiContext,
    who: Principal,
    *,
    new_key: NewKeyOut | None = None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    async with ctx.session(who) as session:
        keys = await session.keys.list(org_id=who.org_id)
        organizations = await session.organizations.all()
        tenants = (
            await session.tenants.list(limit=1000, org_id=who.org_id) if who.role == "org" else []
        )
    names = {o.id: o.name for o in organizations}
    context: dict[str, Any] = {
        "principal": who,
        "active_nav": "keys",
        "keys": keys,
        "states": {k.id: _state(k) for k in keys},
        "org_names": names,
        "organizations": organizations,
        "tenants": tenants,
        "new_key": new_key,
        "error": error,
        "notice": notice,
        "organization": names.get(who.org_id) if who.org_id else None,
    }
    response = page("keys.html", status, **context)
    response.headers.update(NO_STORE)
    return response


def _state(k: ApiKey) -> str:
    if k.revoked_at is not None:
        return "revoked"
    if k.expires_at is not None and k.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"
