"""API keys: `Authorization: Bearer aoer_…`, scoped like tokens, revocable within seconds.

A key is `aoer_` + 32 random bytes (URL-safe); only its SHA-256 is stored. The first time a
process sees a key it reads the key's row once; after that the key is answered from memory.
Every `API_KEY_REFRESH_S` each process asks which of the keys it knows were revoked (one
indexed query for all of them) and writes the `last_used_at` of keys used since their last
write, at most once a minute per key. A process whose revocation list is older than
`API_KEY_STALE_S` refuses keys (503) rather than honour one that may have been revoked, so a
revocation is honoured everywhere within 5 s, and at once by the process that made it.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from uuid import UUID

from aoer.api.auth import OrgLookup, Principal, Role
from aoer.api.errors import Unauthorized
from aoer.constants import API_KEY_REFRESH_S, API_KEY_STALE_S, API_KEY_TOUCH_S
from aoer.errors import DatabaseError, DatabaseUnavailable
from aoer.store import Store
from aoer.store.keys import KeyGrant, key_hash

logger = logging.getLogger(__name__)

FIRST_LOAD_TIMEOUT_S: Final = 5.0
KNOWN_KEYS_MAX: Final = 100_000  # keys remembered per process (then all are re-read)
REFUSED_KEYS_MAX: Final = 10_000  # unknown and revoked keys remembered (never valid again)
INVALID_KEY: Final = "invalid API key"
REVOKED_KEY: Final = "the API key was revoked"
NEVER: Final = datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class _Known:
    principal: Principal
    expires_at: float  # time.time() when it stops working (inf: never)
    used_at: float | None = None  # time.time() of the last use not yet written
    written_at: float = 0.0  # time.monotonic() of the last write of last_used_at


class KeyRegistry:
    """Authenticates API keys from memory and keeps that memory within the bound."""

    def __init__(
        self,
        store: Store,
        org_lookup: OrgLookup | None = None,
        *,
        refresh_s: float = API_KEY_REFRESH_S,
        stale_s: float = API_KEY_STALE_S,
        touch_s: float = API_KEY_TOUCH_S,
    ) -> None:
        self.store = store
        self.org_lookup = org_lookup
        self.refresh_s = refresh_s
        self.stale_s = stale_s
        self.touch_s = touch_s
        self._known: dict[str, _Known] = {}  # key hash → what it grants
        # Key hash → why it is refused. A revoked key never works again, and an unknown one
        # cannot become a key (keys are random), so a flood of bad keys reads nothing twice.
        self._refused: dict[str, str] = {}
        self._loaded_at: float = time.monotonic()  # nothing known yet: nothing can be stale
        # Key id → time.time() of its last use not yet written, for keys dropped from
        # `_known` (revoked, forgotten): a key revoked a second after a use still shows it.
        self._unwritten: dict[UUID, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_fresh(), name="aoer-api-key-revocations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(DatabaseError):
            await asyncio.wait_for(self.flush_last_used(force=True), FIRST_LOAD_TIMEOUT_S)

    async def verify(self, key: str) -> Principal:
        digest = key_hash(key)
        known = self._known.get(digest)
        if known is None:
            refused = self._refused.get(digest)
            if refused is not None:
                raise Unauthorized(refused)
            known = await self._load(digest)
        elif time.monotonic() - self._loaded_at > self.stale_s:
            raise DatabaseUnavailable(
                "cannot confirm that this API key is still valid: the database is unavailable"
            )
        if known.expires_at <= time.time():
            raise Unauthorized("the API key has expired")
        known.used_at = time.time()
        return known.principal

    async def _load(self, digest: str) -> _Known:
        async with self.store.session(timeout_s=FIRST_LOAD_TIMEOUT_S) as session:
            grant = await session.keys.by_hash(digest)
        if grant is None or grant.revoked_at is not None:
            why = INVALID_KEY if grant is None else REVOKED_KEY
            self._refuse(digest, why)
            raise Unauthorized(why)
        known = _Known(self._principal(grant), _deadline(grant))
        if len(self._known) >= KNOWN_KEYS_MAX:
            for old in list(self._known):
                self._drop(old)
        self._known[digest] = known
        return known

    def _principal(self, grant: KeyGrant) -> Principal:
        role: Role = grant.scope
        return Principal(
            subject=f"key:{grant.id}",
            role=role,
            tenant_id=grant.tenant_id,
            expires_at=grant.expires_at or NEVER,
            token_id=str(grant.id),
            org_id=grant.org_id,
            org_lookup=self.org_lookup if grant.org_id is not None else None,
        )

    def forget(self, key_id: UUID) -> None:
        """Drop what this process knows of a key: its row is read again at its next use."""
        subject = f"key:{key_id}"
        for digest, known in list(self._known.items()):
            if known.principal.subject == subject:
                self._drop(digest)

    def revoked(self, key_id: UUID) -> None:
        """A key revoked by this process: refused here at once."""
        subject = f"key:{key_id}"
        for digest, known in list(self._known.items()):
            if known.principal.subject == subject:
                self._drop(digest)
                self._refuse(digest, REVOKED_KEY)

    def _drop(self, digest: str) -> None:
        """Forget a known key, keeping its last use until it is written."""
        known = self._known.pop(digest, None)
        if known is not None and known.used_at is not None and known.principal.token_id:
            self._unwritten[UUID(known.principal.token_id)] = known.used_at

    def _refuse(self, digest: str, why: str) -> None:
        if len(self._refused) >= REFUSED_KEYS_MAX:
            self._refused.clear()
        self._refused[digest] = why

    async def refresh(self) -> bool:
        """Drop the known keys that were revoked; False when the database failed."""
        started = time.monotonic()
        ids = {
            UUID(k.principal.token_id): d for d, k in self._known.items() if k.principal.token_id
        }
        try:
            if ids:
                async with self.store.session() as session:
                    revoked = await session.keys.revoked_among(list(ids))
                for key_id in revoked:
                    self._drop(ids[key_id])
                    self._refuse(ids[key_id], REVOKED_KEY)
        except DatabaseError as exc:
            logger.warning("could not reload revoked API keys: %s", exc)
            return False
        self._loaded_at = started
        return True

    async def flush_last_used(self, *, force: bool = False) -> int:
        """Write `last_used_at` of keys used since their last write (at most one write per key
        per `touch_s`); keys written."""
        now = time.monotonic()
        due = [
            k
            for k in self._known.values()
            if k.used_at is not None and (force or now - k.written_at >= self.touch_s)
        ]
        dropped = dict(self._unwritten)
        if not due and not dropped:
            return 0
        used = {key_id: datetime.fromtimestamp(at, UTC) for key_id, at in dropped.items()}
        used |= {
            UUID(k.principal.token_id or ""): datetime.fromtimestamp(k.used_at, UTC)
            for k in due
            if k.used_at is not None
        }
        async with self.store.session() as session:
            await session.keys.touch(used)
        for k in due:
            k.used_at, k.written_at = None, now
        for key_id, at in dropped.items():
            if self._unwritten.get(key_id) == at:  # not used again meanwhile
                del self._unwritten[key_id]
        return len(used)

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                if await self.refresh():
                    await self.flush_last_used()
            except Exception:  # a failed reload must not end the loop
                logger.exception("API key reload failed")


def _deadline(grant: KeyGrant) -> float:
    return grant.expires_at.timestamp() if grant.expires_at is not None else float("inf")


def expiry_after(days: int | None) -> datetime | None:
    return datetime.now(UTC) + timedelta(days=days) if days is not None else None
