"""Browser sign-in and sign-out.

`GET /login?token=…` (the link `aoer up` prints, or one from `aoer sessions link`) only shows
who the link would sign in as, with a button; the button's form `POST /login` sets the HttpOnly
session cookie. So another site can neither sign a victim into someone else's session by
making the browser open a link (login CSRF) nor use a link up by prefetching it. `POST /login`
and `POST /logout` come from this site's own pages or are refused (Origin / Sec-Fetch-Site).
A login link works once across every replica and restart (`aoer.api.sessions`); no other
token signs in (a bearer token would work as a link for as long as it lives).
"""

import logging
from typing import Annotated, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from aoer.api.auth import LOGIN_PURPOSE, SESSION_COOKIE, Principal
from aoer.api.context import api_context
from aoer.api.errors import Forbidden, HttpError, Unauthorized
from aoer.api.origin import ensure_same_origin
from aoer.api.responses import error_responses
from aoer.api.sessions import USED_LINK_MESSAGE
from aoer.dashboard.render import page
from aoer.dashboard.routes import sign_in_page
from aoer.errors import InvalidInput

logger = logging.getLogger(__name__)

router = APIRouter(tags=["session"])

DASHBOARD_PATH: Final = "/dashboard"
MAX_TOKEN_CHARS: Final = 4096
MAX_FORM_BYTES: Final = 8192
FORM_TYPE: Final = "application/x-www-form-urlencoded"
ROLE_LABELS: Final = {
    "admin": "administrator (every dealership)",
    "org": "organisation user (its own dealerships)",
    "tenant": "dealership user",
    "service": "service (machines only)",
}
HTML_CONTENT: Final = {"text/html": {"schema": {"type": "string"}}}
CROSS_SITE_LOGIN: Final = (
    "cross-site sign-in refused: sign in with the button on this dashboard's own login page"
)
NOT_A_LOGIN_LINK: Final = (
    "this token is not a login link: only a one-time link signs in here "
    "(`aoer sessions link`); send bearer tokens in the Authorization header"
)
CROSS_SITE_LOGOUT: Final = "cross-site sign-out refused: use the Sign out button of the dashboard"


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _refused(request: Request, exc: HttpError) -> Response:
    """A person gets a page that says what to do; a script gets the JSON error."""
    if not _wants_html(request):
        raise exc
    if isinstance(exc, Unauthorized):
        return sign_in_page(str(exc))
    return page(
        "error.html",
        exc.status_code,
        heading="Sign in to see the dashboard",
        message=str(exc),
        show_login_help=True,
    )


async def _link_principal(request: Request, token: str) -> Principal:
    """The token's holder, if the token may still sign in (401 otherwise)."""
    context = api_context(request)
    principal = context.tokens.verify(token)
    if principal.purpose != LOGIN_PURPOSE:
        # A bearer token would sign in again and again for as long as it lives.
        raise Unauthorized(NOT_A_LOGIN_LINK)
    if await context.sessions.login_used(principal):
        raise Unauthorized(USED_LINK_MESSAGE)
    return principal


@router.get(
    "/login",
    response_class=Response,
    responses={
        200: {
            "description": "Who the link signs in as, and a Sign in button (no cookie yet)",
            "content": HTML_CONTENT,
        },
        **error_responses(422),
        401: {**error_responses(401)[401], "content": HTML_CONTENT},  # HTML to browsers
    },
    summary="Show who a token (e.g. the link `aoer up` prints) would sign in as",
    description="Sets no cookie and uses nothing up: the page's button posts the token to "
    "`POST /login`, which sets the session cookie.",
)
async def login_page(
    request: Request,
    token: Annotated[str, Query(min_length=1, max_length=MAX_TOKEN_CHARS, description="A JWT")],
) -> Response:
    try:
        principal = await _link_principal(request, token)
    except Unauthorized as exc:
        return _refused(request, exc)
    tenant_name = org_name = None
    if principal.tenant_id is not None or principal.org_id is not None:
        async with api_context(request).session() as session:
            if principal.tenant_id is not None:
                tenant_name = await session.tenants.name(principal.tenant_id)
            if principal.org_id is not None:
                org = await session.organizations.get(principal.org_id)
                org_name = org.name if org is not None else None
    return page(
        "login.html",
        token=token,
        subject=principal.subject,
        role_label=ROLE_LABELS[principal.role],
        tenant_id=principal.tenant_id,
        tenant_name=tenant_name,
        org_id=principal.org_id,
        org_name=org_name,
        one_time=principal.purpose == LOGIN_PURPOSE,
        link_expires=principal.expires_at,
    )


async def _form_token(request: Request) -> str:
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise InvalidInput(f"POST /login takes a form ({FORM_TYPE}) with a token field")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"the sign-in form is over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode(), max_num_fields=10, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the sign-in form cannot be read: send a token field") from None
    tokens = fields.get("token", [])
    if len(tokens) != 1 or not 0 < len(tokens[0]) <= MAX_TOKEN_CHARS:
        raise InvalidInput("the sign-in form needs exactly one token field (a JWT)")
    return tokens[0]


@router.post("/login", status_code=303, include_in_schema=False)
async def login(request: Request) -> Response:
    """The login page's button: use the link up, open a session, set the cookie."""
    try:
        ensure_same_origin(request, CROSS_SITE_LOGIN)
        principal = await _link_principal(request, await _form_token(request))
        opened = await api_context(request).sessions.sign_in(principal)
    except (Unauthorized, Forbidden) as exc:
        return _refused(request, exc)
    response = RedirectResponse(DASHBOARD_PATH, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        opened.token,
        max_age=max(1, int(opened.ttl.total_seconds())),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """End this browser's session everywhere and clear its cookie."""
    try:
        ensure_same_origin(request, CROSS_SITE_LOGOUT)
    except Forbidden as exc:
        return _refused(request, exc)
    context = api_context(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            principal = context.tokens.verify(token)
        except Unauthorized:
            principal = None  # expired or foreign: nothing to revoke, the cookie goes anyway
        if principal is not None:
            await context.sessions.sign_out(principal)
    response = page("signed_out.html")
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
