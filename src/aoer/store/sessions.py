"""`aoer_sessions`: used login links and dashboard sessions, so both hold across replicas.

A login link is taken with one insert that only one process can win; a session is a row that
signing out (or an administrator) revokes. API processes keep the revoked ids in memory
(`aoer.api.sessions`), so a request never waits for this table.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from aoer.constants import TOKEN_LEEWAY_S
from aoer.store.statements import Statements

SessionKind = Literal["login", "session"]
LIVE_SESSIONS_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    kind: SessionKind
    subject: str
    role: str
    tenant_id: UUID | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class RevokedSession:
    id: str
    expires_at: datetime


class Sessions(Statements):
    async def consume_login(
        self, token_id: str, subject: str, role: str, tenant_id: UUID | None, expires_at: datetime
    ) -> bool:
        """Record a login link as used; False when it already was (here or on any replica)."""
        params = _row(token_id, subject, role, tenant_id, expires_at)
        return await self._value("consume_login", params) is not None

    async def login_used(self, token_id: str) -> bool:
        return await self._value("login_used", {"id": token_id}) is True

    async def open(
        self, token_id: str, subject: str, role: str, tenant_id: UUID | None, expires_at: datetime
    ) -> None:
        """Record a new session (the id of the session token the cookie carries)."""
        await self._run("open_session", _row(token_id, subject, role, tenant_id, expires_at))

    async def revoke(self, token_id: str) -> bool:
        """Sign one session out; False when it is unknown or already signed out."""
        return await self._value("revoke_session", {"id": token_id}) is not None

    async def revoke_all(
        self, *, tenant_id: UUID | None = None, subject: str | None = None
    ) -> list[str]:
        """Sign out every live session of a tenant, of a subject, or (neither) everyone."""
        found = await self._values("revoke_sessions", {"tenant_id": tenant_id, "subject": subject})
        return [str(v) for v in found]

    async def revoked(self) -> list[RevokedSession]:
        """Revoked sessions whose token would still verify."""
        return await self._all(RevokedSession, "revoked_sessions", {"leeway_s": TOKEN_LEEWAY_S})

    async def live(self, limit: int = LIVE_SESSIONS_LIMIT) -> list[SessionRecord]:
        return await self._all(SessionRecord, "live_sessions", {"limit": limit})

    async def delete_expired(self, limit: int) -> int:
        """Retention: one batch of rows whose token has expired; rows deleted."""
        params = {"leeway_s": TOKEN_LEEWAY_S, "limit": limit}
        return await self._run("delete_expired_sessions", params)


def _row(
    token_id: str, subject: str, role: str, tenant_id: UUID | None, expires_at: datetime
) -> dict[str, object]:
    return {
        "id": token_id,
        "subject": subject,
        "role": role,
        "tenant_id": tenant_id,
        "expires_at": expires_at,
    }
