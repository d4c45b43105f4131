"""Browser sign-in: `GET /login?token=…` turns a token into an HttpOnly session cookie."""

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from aoer.api.auth import LOGIN_PURPOSE, SESSION_COOKIE, SESSION_TTL, token_service
from aoer.api.errors import Unauthorized
from aoer.api.responses import error_responses
from aoer.dashboard.routes import sign_in_page

logger = logging.getLogger(__name__)

router = APIRouter(tags=["session"])

DASHBOARD_PATH = "/dashboard"


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


@router.get(
    "/login",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: {"description": "Signed in: the session cookie is set, on to the dashboard"},
        **error_responses(401, 422),
    },
    summary="Exchange a token (e.g. the link `aoer up` prints) for a session cookie",
)
async def login(
    request: Request,
    token: Annotated[str, Query(min_length=1, max_length=4096, description="A JWT")],
) -> Response:
    tokens = token_service(request)
    try:
        principal = tokens.verify(token)
        tokens.consume_login(principal)
    except Unauthorized as exc:
        if _wants_html(request):
            # A person clicking a used or expired link gets a page that says what to do.
            return sign_in_page(str(exc))
        raise
    # The cookie holds a fresh session token, never the (possibly logged) link's token. A
    # login link opens a full session; any other token lends the session its own expiry.
    ttl = SESSION_TTL
    if principal.purpose != LOGIN_PURPOSE:
        ttl = min(ttl, principal.expires_at - datetime.now(UTC))
    session = tokens.mint(
        principal.role, tenant_id=principal.tenant_id, ttl=ttl, subject=principal.subject
    )
    logger.info(
        "dashboard login as %s (%s)",
        principal.subject,
        principal.role,
        extra={"action": "login"},
    )
    response = RedirectResponse(DASHBOARD_PATH, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=max(1, int(ttl.total_seconds())),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
