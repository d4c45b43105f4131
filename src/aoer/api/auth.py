"""Who is calling: HS256 bearer JWTs (or the session cookie that carries one), roles, tenants.

Tokens carry `sub`, `role` (admin | service | tenant), `tenant_id` for tenant tokens, `exp`
and `iat`. Routers declare what they need with the dependencies at the bottom of this module:
`CurrentPrincipal`, `require_roles(...)`, `require_admin`, `tenant_query_access(...)`, and
`ensure_tenant_access(principal, tenant_id)` for tenants named in a body.
"""

import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from aoer.errors import AoerError
from aoer.store import Scope

logger = logging.getLogger(__name__)

Role = Literal["admin", "service", "tenant"]
ROLES: tuple[Role, ...] = get_args(Role)
JWT_ALGORITHM = "HS256"
MIN_SECRET_CHARS = 32  # HS256 keys shorter than the hash are guessable
SESSION_COOKIE = "aoer_session"
DEFAULT_TOKEN_TTL = timedelta(days=1)
LOGIN_TOKEN_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)
LOGIN_PURPOSE = "login"
LEEWAY_S = 5  # clock skew tolerated between the minting and the verifying host
VERIFIED_CACHE_SIZE = 10_000  # tokens whose signature was checked, kept until they expire


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller."""

    subject: str
    role: Role
    tenant_id: UUID | None
    expires_at: datetime
    token_id: str | None = None
    purpose: str | None = None

    def may_access(self, tenant_id: UUID) -> bool:
        return self.role != "tenant" or self.tenant_id == tenant_id

    @property
    def scope(self) -> Scope | None:
        """What Row Level Security limits this caller to (None: admin and service roles,
        whose access the endpoints check)."""
        if self.role != "tenant" or self.tenant_id is None:
            return None
        return Scope({"sub": self.subject, "role": self.role, "tenant_id": str(self.tenant_id)})


class TokenService:
    """Mints and verifies tokens with one shared secret; login tokens work once per process."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise AoerError(f"AOER_JWT_SECRET must be at least {MIN_SECRET_CHARS} characters")
        self._secret = secret
        self._used_logins: dict[str, float] = {}
        # A token is immutable: once its signature and claims check out, only its expiry
        # can change the answer. Remembering it saves the HMAC and JSON work per request.
        self._verified: dict[str, Principal] = {}

    def mint(
        self,
        role: str,
        *,
        tenant_id: UUID | None = None,
        ttl: timedelta = DEFAULT_TOKEN_TTL,
        subject: str | None = None,
        purpose: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise AoerError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        if (role == "tenant") != (tenant_id is not None):
            raise AoerError("a tenant token needs a tenant id, and only a tenant token has one")
        if ttl <= timedelta(0):
            raise AoerError("a token's time to live must be positive")
        now = datetime.now(UTC)
        claims: dict[str, object] = {
            "sub": subject or (f"tenant:{tenant_id}" if tenant_id else role),
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if tenant_id is not None:
            claims["tenant_id"] = str(tenant_id)
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
        tenant_id = _tenant_claim(claims.get("tenant_id"))
        if (role == "tenant") != (tenant_id is not None):
            raise Unauthorized("invalid token: tenant_id goes with role tenant, and only with it")
        return Principal(
            subject=str(claims["sub"]),
            role=cast(Role, role),
            tenant_id=tenant_id,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            token_id=str(claims["jti"]) if "jti" in claims else None,
            purpose=str(claims["purpose"]) if "purpose" in claims else None,
        )

    def consume_login(self, principal: Principal) -> None:
        """A login link works once: refuse a login token this process has already taken."""
        if principal.purpose != LOGIN_PURPOSE:
            return
        now = time.time()
        self._used_logins = {k: exp for k, exp in self._used_logins.items() if exp > now}
        if principal.token_id is None or principal.token_id in self._used_logins:
            raise Unauthorized("this login link was already used; mint a new one")
        self._used_logins[principal.token_id] = principal.expires_at.timestamp() + LEEWAY_S


def _tenant_claim(value: object) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(str(value))
    except ValueError:
        raise Unauthorized("invalid token: tenant_id is not a UUID") from None


def secret_matches(given: str, expected: str | None) -> bool:
    """Constant-time comparison, so the cron secret cannot be guessed byte by byte."""
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


# OpenAPI-visible credential sources; neither fails by itself, `current_principal` decides.
bearer_scheme = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="`aoer token` mints one (HS256)"
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="Set by GET /login for the dashboard"
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
SessionCookie = Annotated[str | None, Depends(cookie_scheme)]


def token_service(request: Request) -> TokenService:
    return api_context(request).tokens


async def current_principal(
    request: Request, bearer: BearerCredentials, cookie: SessionCookie
) -> Principal:
    return _authenticate(request, bearer.credentials if bearer is not None else cookie)


def _authenticate(request: Request, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("missing credentials: send Authorization: Bearer <token>")
    principal = token_service(request).verify(token)
    if principal.purpose == LOGIN_PURPOSE:
        raise Unauthorized("a login token only works on GET /login")
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


def ensure_tenant_access(principal: Principal, tenant_id: UUID) -> None:
    """403 unless the caller may act on this tenant (tenant tokens: only their own)."""
    if not principal.may_access(tenant_id):
        raise Forbidden(f"this token belongs to another tenant, not to {tenant_id}")


@dataclass(frozen=True, slots=True)
class TenantAccess:
    """A caller allowed to act on `tenant_id`."""

    principal: Principal
    tenant_id: UUID


_TENANT_ID = TypeAdapter(UUID)
TENANT_ID_DESCRIPTION = "The tenant's UUID"


def request_token(request: Request) -> str | None:
    """The token `bearer_scheme` or else `cookie_scheme` would find, read off the request."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.cookies.get(SESSION_COOKIE) or None


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

    It reads the credentials and the query off the request itself instead of declaring them
    as FastAPI parameters: the dashboard's and scripts' hottest reads (a cached summary) go
    through it, and FastAPI's per-parameter dependency solving cost a third of such a
    request. Routes using it declare both in OpenAPI with `openapi_extra=TENANT_QUERY_DOC`.
    Credentials are checked before the input, so a request without them gets 401, not 422.
    """

    async def dependency(request: Request) -> TenantAccess:
        principal = _check_role(_authenticate(request, request_token(request)), roles)
        tenant_id = tenant_id_query(request)
        ensure_tenant_access(principal, tenant_id)
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


async def cron_caller(
    request: Request, bearer: BearerCredentials, cookie: SessionCookie
) -> Principal:
    """`Authorization: Bearer $CRON_SECRET` (external schedulers), or an admin/service token."""
    cron_secret = api_context(request).settings.cron_secret
    if bearer is not None and secret_matches(bearer.credentials, cron_secret):
        return Principal("cron-secret", "service", None, datetime.max.replace(tzinfo=UTC))
    principal = await current_principal(request, bearer, cookie)
    if principal.role not in ("admin", "service"):
        raise Forbidden(f"role {principal.role} may not trigger the cron (allowed: admin, service)")
    return principal
