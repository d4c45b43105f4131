"""Who is calling: HS256 bearer JWTs (or the session cookie that carries one), roles, tenants.

Tokens carry `sub`, `role` (admin | service | org | tenant), `tenant_id` for tenant tokens,
`org_id` for organisation tokens, `exp` and `iat`; `Authorization: Bearer aoer_…` API keys
(`aoer.api.keys`) give the same principals. Routers declare what they need with the
dependencies at the bottom of this module: `CurrentPrincipal`, `require_roles(...)`,
`require_admin`, `tenant_query_access(...)`, and `await ensure_tenant_access(principal,
tenant_id)` for tenants named in a body or path.

An organisation's access to a tenant is read from the database on every check (one indexed
lookup, only for `org` callers), so a tenant moved to another organisation is refused to the
old one on the very next request, on every replica, cached summaries included.
"""

import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast, get_args
from uuid import UUID

import jwt
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import TypeAdapter, ValidationError

from aoer.api.context import api_context
from aoer.api.errors import Forbidden, Unauthorized
from aoer.api.origin import SAFE_METHODS, ensure_same_origin
from aoer.constants import API_KEY_PREFIX, TOKEN_LEEWAY_S
from aoer.errors import AoerError
from aoer.store import Scope, Store

logger = logging.getLogger(__name__)

Role = Literal["admin", "service", "org", "tenant"]
ROLES: tuple[Role, ...] = get_args(Role)
JWT_ALGORITHM = "HS256"
MIN_SECRET_CHARS = 32  # HS256 keys shorter than the hash are guessable
SESSION_COOKIE = "aoer_session"
DEFAULT_TOKEN_TTL = timedelta(days=1)
LOGIN_TOKEN_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)
LOGIN_PURPOSE = "login"  # a one-time link: only POST /login takes it
SESSION_PURPOSE = "session"  # what the cookie carries: revocable (aoer.api.sessions)
LEEWAY_S = TOKEN_LEEWAY_S
VERIFIED_CACHE_SIZE = 10_000  # tokens whose signature was checked, kept until they expire

# The organisation a tenant belongs to (None: in none, or no such tenant).
OrgLookup = Callable[[UUID], Awaitable[UUID | None]]


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller."""

    subject: str
    role: Role
    tenant_id: UUID | None
    expires_at: datetime
    token_id: str | None = None
    purpose: str | None = None
    org_id: UUID | None = None
    # How `ensure_tenant_access` learns a tenant's organisation (set for `org` callers by
    # whoever verified them; without it an organisation is refused every tenant).
    org_lookup: OrgLookup | None = field(default=None, compare=False, repr=False)

    @property
    def scope(self) -> Scope | None:
        """What Row Level Security limits this caller to (None: admin and service roles,
        whose access the endpoints check)."""
        if self.role == "tenant" and self.tenant_id is not None:
            claims = {"sub": self.subject, "role": self.role, "tenant_id": str(self.tenant_id)}
            return Scope(claims)
        if self.role == "org" and self.org_id is not None:
            return Scope({"sub": self.subject, "role": self.role, "org_id": str(self.org_id)})
        return None


class TokenService:
    """Mints and verifies tokens with one shared secret (stateless: sessions and used login
    links are `aoer.api.sessions`' business)."""

    def __init__(self, secret: str, org_lookup: OrgLookup | None = None) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise AoerError(f"AOER_JWT_SECRET must be at least {MIN_SECRET_CHARS} characters")
        self._secret = secret
        self.org_lookup = org_lookup
        # A token is immutable: once its signature and claims check out, only its expiry
        # can change the answer. Remembering it saves the HMAC and JSON work per request.
        self._verified: dict[str, Principal] = {}

    def mint(
        self,
        role: str,
        *,
        tenant_id: UUID | None = None,
        org_id: UUID | None = None,
        ttl: timedelta = DEFAULT_TOKEN_TTL,
        subject: str | None = None,
        purpose: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise AoerError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        if (role == "tenant") != (tenant_id is not None):
            raise AoerError("a tenant token needs a tenant id, and only a tenant token has one")
        if (role == "org") != (org_id is not None):
            raise AoerError(
                "an organisation token needs an organisation id, and only such a token has one"
            )
        if ttl <= timedelta(0):
            raise AoerError("a token's time to live must be positive")
        now = datetime.now(UTC)
        default_subject = (
            f"tenant:{tenant_id}" if tenant_id else f"org:{org_id}" if org_id else role
        )
        claims: dict[str, object] = {
            "sub": subject or default_subject,
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if tenant_id is not None:
            claims["tenant_id"] = str(tenant_id)
        if org_id is not None:
            claims["org_id"] = str(org_id)
        if purpose is not None:
            claims["purpose"] = purpose
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at.timestamp() + LEEWAY_S <= time.time():
                del self._verified[token]
                raise Unauthorized("the token has expired")
            return known
        principal = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["exp", "sub", "role"]},
                leeway=LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        role = claims.get("role")
        if role not in ROLES:
            raise Unauthorized(f"invalid token: unknown role {role!r}")
        tenant_id = _uuid_claim(claims.get("tenant_id"), "tenant_id")
        if (role == "tenant") != (tenant_id is not None):
            raise Unauthorized("invalid token: tenant_id goes with role tenant, and only with it")
        org_id = _uuid_claim(claims.get("org_id"), "org_id")
        if (role == "org") != (org_id is not None):
            raise Unauthorized("invalid token: org_id goes with role org, and only with it")
        return Principal(
            subject=str(claims["sub"]),
            role=cast(Role, role),
            tenant_id=tenant_id,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            token_id=str(claims["jti"]) if "jti" in claims else None,
            purpose=str(claims["purpose"]) if "purpose" in claims else None,
            org_id=org_id,
            org_lookup=self.org_lookup if org_id is not None else None,
        )


def _uuid_claim(value: object, name: str) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(str(value))
    except ValueError:
        raise Unauthorized(f"invalid token: {name} is not a UUID") from None


ORG_LOOKUP_TIMEOUT_S = 5.0


def org_lookup(store: Store) -> OrgLookup:
    """Reads a tenant's organisation from the database, at each check: a move takes effect on
    the very next request, on every replica."""

    async def lookup(tenant_id: UUID) -> UUID | None:
        async with store.session(timeout_s=ORG_LOOKUP_TIMEOUT_S) as session:
            found = await session.organizations.of_tenant(tenant_id)
        return found.org_id if found is not None else None

    return lookup


def secret_matches(given: str, expected: str | None) -> bool:
    """Constant-time comparison, so the cron secret cannot be guessed byte by byte."""
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


# OpenAPI-visible credential sources; neither fails by itself, `current_principal` decides.
bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="`aoer token` mints one (HS256); an API key (`aoer_…`, `aoer keys create`) "
    "works wherever a token does",
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="Set by POST /login for the dashboard; requests that change state with it "
    "must come from the dashboard's own pages (Origin / Sec-Fetch-Site)",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
SessionCookie = Annotated[str | None, Depends(cookie_scheme)]


def token_service(request: Request) -> TokenService:
    return api_context(request).tokens


async def current_principal(
    request: Request, bearer: BearerCredentials, cookie: SessionCookie
) -> Principal:
    if bearer is not None:
        return await _authenticate(request, bearer.credentials, from_cookie=False)
    return await _authenticate(request, cookie, from_cookie=True)


async def _authenticate(request: Request, token: str | None, *, from_cookie: bool) -> Principal:
    if not token:
        raise Unauthorized("missing credentials: send Authorization: Bearer <token>")
    context = api_context(request)
    if token.startswith(API_KEY_PREFIX):
        if from_cookie:
            raise Unauthorized("the session cookie holds no session; sign in again")
        return await context.keys.verify(token)
    principal = context.tokens.verify(token)
    if principal.purpose == LOGIN_PURPOSE:
        raise Unauthorized("a login token only works on /login")
    context.sessions.check(principal)  # a signed-out session, wherever it is presented
    if from_cookie:
        if principal.purpose != SESSION_PURPOSE:
            raise Unauthorized("the session cookie holds no session; sign in again")
        if request.method not in SAFE_METHODS:
            ensure_same_origin(request)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _check_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role} may not do this (allowed: {', '.join(roles)})")
    return principal


# The dependencies below call `current_principal` directly instead of depending on it: each
# dependency level costs FastAPI real time per request, and these sit on every hot path.


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only these roles through (403 for the others)."""

    async def dependency(
        request: Request, bearer: BearerCredentials, cookie: SessionCookie
    ) -> Principal:
        return _check_role(await current_principal(request, bearer, cookie), roles)

    return dependency


require_admin = require_roles("admin")


async def ensure_tenant_access(principal: Principal, tenant_id: UUID) -> None:
    """403 unless the caller may act on this tenant: a tenant only on its own, an
    organisation only on the tenants it holds right now (read from the database)."""
    if principal.role == "tenant":
        if principal.tenant_id != tenant_id:
            raise Forbidden(f"this token belongs to another tenant, not to {tenant_id}")
    elif principal.role == "org":
        lookup = principal.org_lookup
        if (
            lookup is None
            or principal.org_id is None
            or await lookup(tenant_id) != principal.org_id
        ):
            raise Forbidden(f"tenant {tenant_id} is not in this token's organisation")


def ensure_org_access(principal: Principal, org_id: UUID) -> None:
    """403 unless an organisation's caller names its own organisation (a filter naming
    another's answers 403, as one naming another's tenant does, never an empty list that
    reads as "none"). A tenant token carries no organisation: Row Level Security leaves it
    its own tenant's rows, whichever organisation it names."""
    if principal.role == "org" and org_id != principal.org_id:
        raise Forbidden(f"organisation {org_id} is not this token's organisation")


async def may_access(principal: Principal, tenant_id: UUID) -> bool:
    """Whether `ensure_tenant_access` would let the caller through."""
    try:
        await ensure_tenant_access(principal, tenant_id)
    except Forbidden:
        return False
    return True


@dataclass(frozen=True, slots=True)
class TenantAccess:
    """A caller allowed to act on `tenant_id`."""

    principal: Principal
    tenant_id: UUID


_TENANT_ID = TypeAdapter(UUID)
TENANT_ID_DESCRIPTION = "The tenant's UUID"


def request_token(request: Request) -> tuple[str | None, bool]:
    """The token `bearer_scheme` or else `cookie_scheme` would find, read off the request,
    and whether it came from the cookie."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials, False
    return request.cookies.get(SESSION_COOKIE) or None, True


async def authenticate(request: Request) -> Principal:
    """The caller of `request` (its bearer token, or else its session cookie), checked now:
    what an open event stream asks again every few seconds, so that a key revoked or a
    session signed out after it opened ends it."""
    token, from_cookie = request_token(request)
    return await _authenticate(request, token, from_cookie=from_cookie)


def tenant_id_query(request: Request) -> UUID:
    """`?tenantId=` as a UUID; a 422 naming the parameter otherwise (as FastAPI words it)."""
    value = request.query_params.get("tenantId")
    location = ("query", "tenantId")
    if value is None:
        missing = {"type": "missing", "loc": location, "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return _TENANT_ID.validate_python(value)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": (*location, *error["loc"])} for error in exc.errors()]
        ) from None


def tenant_query_access(*roles: Role) -> Callable[[Request], Awaitable[TenantAccess]]:
    """A dependency reading `?tenantId=`: these roles only, tenant tokens only their own.
    Where `tenant` is allowed so is `org`, on the tenants of its organisation.

    It reads the credentials and the query off the request itself instead of declaring them
    as FastAPI parameters: the dashboard's and scripts' hottest reads (a cached summary) go
    through it, and FastAPI's per-parameter dependency solving cost a third of such a
    request. Routes using it declare both in OpenAPI with `openapi_extra=TENANT_QUERY_DOC`.
    Credentials are checked before the input, so a request without them gets 401, not 422.
    """

    allowed: tuple[Role, ...] = (*roles, "org") if "tenant" in roles else roles

    async def dependency(request: Request) -> TenantAccess:
        principal = await authenticate(request)
        _check_role(principal, allowed)
        tenant_id = tenant_id_query(request)
        await ensure_tenant_access(principal, tenant_id)
        return TenantAccess(principal, tenant_id)

    return dependency


# What FastAPI would have documented for `bearer_scheme`, `cookie_scheme` and a
# `tenantId: UUID` Query parameter (a test keeps the two in step).
TENANT_QUERY_DOC: dict[str, Any] = {
    "security": [{bearer_scheme.scheme_name: []}, {cookie_scheme.scheme_name: []}],
    "parameters": [
        {
            "name": "tenantId",
            "in": "query",
            "required": True,
            "schema": {
                "type": "string",
                "format": "uuid",
                "description": TENANT_ID_DESCRIPTION,
                "title": "Tenantid",
            },
            "description": TENANT_ID_DESCRIPTION,
        }
    ],
}


CRON_COOKIE_MESSAGE = (
    "GET /api/aoer/cron takes Authorization: Bearer (CRON_SECRET, or an admin or service "
    "token), never the session cookie: no page may queue the fleet by being visited"
)


async def cron_caller(request: Request, bearer: BearerCredentials) -> Principal:
    """`Authorization: Bearer $CRON_SECRET` (external schedulers), or an admin/service token.

    Never the session cookie: this GET changes state, and a browser sends the cookie along
    with any GET another page makes it send."""
    if bearer is None:
        if request.cookies.get(SESSION_COOKIE):
            raise Forbidden(CRON_COOKIE_MESSAGE)
        raise Unauthorized("missing credentials: send Authorization: Bearer <token>")
    cron_secret = api_context(request).settings.cron_secret
    if secret_matches(bearer.credentials, cron_secret):
        return Principal("cron-secret", "service", None, datetime.max.replace(tzinfo=UTC))
    principal = await _authenticate(request, bearer.credentials, from_cookie=False)
    if principal.role not in ("admin", "service"):
        raise Forbidden(f"role {principal.role} may not trigger the cron (allowed: admin, service)")
    return principal
