"""`api_keys`: scoped, expiring, revocable API keys, stored as hashes (DESIGN §12).

The key itself is never stored: only its SHA-256 (`hash`) and the first characters
(`prefix`) that let a person tell keys apart. API processes keep the keys they have seen in
memory (`aoer.api.keys`); a request never waits for this table once its key is known.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from aoer.store.statements import Statements

KeyScope = Literal["admin", "service", "org", "tenant"]
KEY_LIST_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    prefix: str
    scope: KeyScope
    org_id: UUID | None
    tenant_id: UUID | None
    name: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a presented key grants, as authentication reads it."""

    id: UUID
    scope: KeyScope
    org_id: UUID | None
    tenant_id: UUID | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    hash: str
    scope: KeyScope
    org_id: UUID | None
    tenant_id: UUID | None
    name: str | None
    created_by: str
    expires_at: datetime | None


class ApiKeys(Statements):
    async def create(self, key: NewKey) -> ApiKey:
        params = {
            "prefix": key.prefix,
            "hash": key.hash,
            "scope": key.scope,
            "org_id": key.org_id,
            "tenant_id": key.tenant_id,
            "name": key.name,
            "created_by": key.created_by,
            "expires_at": key.expires_at,
        }
        row = await self._one(ApiKey, "create_api_key", params)
        assert row is not None  # INSERT … RETURNING returns the row
        return row

    async def by_hash(self, key_hash: str) -> KeyGrant | None:
        return await self._one(KeyGrant, "api_key_by_hash", {"hash": key_hash})

    async def list(
        self, *, org_id: UUID | None = None, limit: int = KEY_LIST_LIMIT
    ) -> list[ApiKey]:
        """Newest first; `org_id`: only that organisation's and its tenants' keys."""
        return await self._all(ApiKey, "list_api_keys", {"org_id": org_id, "limit": limit})

    async def get(self, key_id: UUID) -> ApiKey | None:
        return await self._one(ApiKey, "get_api_key", {"id": key_id})

    async def revoke(self, key_id: UUID) -> ApiKey | None:
        """The key as revoked now; None when unknown (to this scope) or already revoked."""
        return await self._one(ApiKey, "revoke_api_key", {"id": key_id})

    async def revoked_among(self, ids: Sequence[UUID]) -> set[UUID]:
        found = await self._values("revoked_api_keys", {"ids": list(ids)})
        return {v for v in found if isinstance(v, UUID)}

    async def touch(self, used: Mapping[UUID, datetime]) -> int:
        """Record last-use times for a batch of keys; rows changed."""
        ids = list(used)
        return await self._run("touch_api_keys", {"ids": ids, "ats": [used[i] for i in ids]})
