"""Browser sessions that hold across replicas and restarts.

A login link is taken once: signing in records its token id in `aoer_sessions` with an
insert only one process can win, in the same transaction that records the new session. A
session is revoked by signing out (or by `aoer sessions revoke`); every API process reloads
the revoked ids every `SESSION_REVOCATIONS_REFRESH_S` seconds, so a revocation is honoured
everywhere within that bound (at once by the process that made it) without a database read
per request. A process that could not reload for `SESSION_REVOCATIONS_STALE_S` refuses
session cookies (503) rather than trust one that may have been signed out.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from aoer.api.auth import (
    LOGIN_PURPOSE,
    SESSION_PURPOSE,
    SESSION_TTL,
    Principal,
    TokenService,
)
from aoer.api.errors import Unauthorized
from aoer.constants import (
    SESSION_REVOCATIONS_REFRESH_S,
    SESSION_REVOCATIONS_STALE_S,
    TOKEN_LEEWAY_S,
)
from aoer.errors import DatabaseError, DatabaseUnavailable
from aoer.store import Session, Store

logger = logging.getLogger(__name__)

FIRST_LOAD_TIMEOUT_S: Final = 5.0
USED_LINK_MESSAGE: Final = "this login link was already used; ask for a new one"


@dataclass(frozen=True, slots=True)
class OpenedSession:
    token: str  # what the cookie carries
    principal: Principal
    ttl: timedelta


class SessionRegistry:
    """Signs browsers in and out, and knows (within the bound) which sessions were revoked."""

    def __init__(
        self,
        store: Store,
        tokens: TokenService,
        *,
        refresh_s: float = SESSION_REVOCATIONS_REFRESH_S,
        stale_s: float = SESSION_REVOCATIONS_STALE_S,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.refresh_s = refresh_s
        self.stale_s = stale_s
        self._revoked: dict[str, float] = {}  # token id → when its token stops verifying
        self._loaded_at: float | None = None  # time.monotonic() of the last successful load
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the revoked sessions (briefly waited for), then keep reloading them."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.refresh(), FIRST_LOAD_TIMEOUT_S)
        self._task = asyncio.create_task(self._keep_fresh(), name="aoer-session-revocations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> bool:
        """Reload the revoked ids; False (and the old list kept) when the database fails."""
        started = time.monotonic()
        try:
            async with self.store.session() as session:
                rows = await session.sessions.revoked()
        except DatabaseError as exc:
            logger.warning("could not reload revoked sessions: %s", exc)
            return False
        fresh = {row.id: row.expires_at.timestamp() + TOKEN_LEEWAY_S for row in rows}
        # A revocation is never undone, so what this process knew stays (among it, one it
        # made while the read ran); only what can no longer verify is dropped.
        now = time.time()
        self._revoked = {k: exp for k, exp in (self._revoked | fresh).items() if exp > now}
        self._loaded_at = started
        return True

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception:  # a failed reload must not end the loop
                logger.exception("revoked sessions reload failed")

    def check(self, principal: Principal) -> None:
        """401 when this session was signed out; 503 when that cannot be known."""
        if principal.purpose != SESSION_PURPOSE:
            return
        loaded_at = self._loaded_at
        if loaded_at is None or time.monotonic() - loaded_at > self.stale_s:
            raise DatabaseUnavailable(
                "cannot confirm that this session is still signed in: the database is unavailable"
            )
        if principal.token_id is None or principal.token_id in self._revoked:
            raise Unauthorized("this session was signed out; sign in again")

    async def login_used(self, principal: Principal) -> bool:
        if principal.purpose != LOGIN_PURPOSE or principal.token_id is None:
            return False
        async with self.store.session() as session:
            return await session.sessions.login_used(principal.token_id)

    async def sign_in(self, principal: Principal) -> OpenedSession:
        """A new session for the holder of a one-time login link, which is used up.

        Only a login link signs in: a bearer token would do it again and again for as long as
        it lives. The cookie carries a fresh session token, never the (possibly logged) link's."""
        if principal.purpose != LOGIN_PURPOSE:
            raise Unauthorized("only a one-time login link signs in")
        ttl = SESSION_TTL
        token = self.tokens.mint(
            principal.role,
            tenant_id=principal.tenant_id,
            org_id=principal.org_id,
            ttl=ttl,
            subject=principal.subject,
            purpose=SESSION_PURPOSE,
        )
        session_principal = self.tokens.verify(token)
        assert session_principal.token_id is not None  # minted tokens always carry a jti
        async with self.store.session() as session, session.transaction():
            await _use_up(session, principal)
            await session.sessions.open(
                session_principal.token_id,
                session_principal.subject,
                session_principal.role,
                session_principal.tenant_id,
                session_principal.expires_at,
            )
        logger.info(
            "dashboard login as %s (%s), session %s",
            principal.subject,
            principal.role,
            _short(session_principal.token_id),
            extra={"action": "login"},
        )
        return OpenedSession(token, session_principal, ttl)

    async def sign_out(self, principal: Principal) -> None:
        """Revoke this session: here at once, on every other replica within the bound."""
        if principal.purpose != SESSION_PURPOSE or principal.token_id is None:
            return
        async with self.store.session() as session:
            await session.sessions.revoke(principal.token_id)
        self._revoked[principal.token_id] = principal.expires_at.timestamp() + TOKEN_LEEWAY_S
        logger.info(
            "dashboard logout of %s (%s), session %s",
            principal.subject,
            principal.role,
            _short(principal.token_id),
            extra={"action": "logout"},
        )


async def _use_up(session: Session, link: Principal) -> None:
    """Record the login link as used; 401 when any process did so before."""
    used_now = link.token_id is not None and await session.sessions.consume_login(
        link.token_id, link.subject, link.role, link.tenant_id, link.expires_at
    )
    if not used_now:
        raise Unauthorized(USED_LINK_MESSAGE)


def _short(token_id: str) -> str:
    """Enough of a session id to follow it through the logs, not enough to matter."""
    return token_id[:8]
