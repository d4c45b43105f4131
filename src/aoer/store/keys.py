"""`api_keys`: scoped, expiring, revocable API keys, stored as hashes (DESIGN §12).

The key itself is never stored: only its SHA-256 (`hash`) and the first characters
(`prefix`) that let a person tell keys apart. API processes keep the keys they have seen in
memory (`aoer.api.keys`); a request never waits for this table once its key is known.
"""

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, cast, get_args
from uuid import UUID

from aoer.constants import API_KEY_PREFIX, API_KEY_RANDOM_BYTES, API_KEY_SHOWN_PREFIX
from aoer.errors import InvalidInput, UnknownOrganization, UnknownTenant
from aoer.store.statements import Statements

KeyScope = Literal["admin", "service", "org", "tenant"]
KEY_SCOPES: Final[tuple[str, ...]] = get_args(KeyScope)
KEY_LIST_LIMIT: Final = 1000


def new_key() -> tuple[str, str, str]:
    """A fresh key: (the key, its shown prefix, its SHA-256 hex)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)
    return key, key[:API_KEY_SHOWN_PREFIX], key_hash(key)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


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
    # Listed keys only: the tenant's name where the caller sees the tenant (None when it
    # left the caller's organisation)
    tenant_name: str | None = None


@dataclass(frozen=True, slots=True)
class KeyName:
    id: UUID
    name: str


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
    issued_by_org: UUID | None = None  # the organisation that created it (its caller's)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once, never stored
    record: ApiKey


class ApiKeys(Statements):
    async def issue(
        self,
        scope: str,
        *,
        org_id: UUID | None,
        tenant_id: UUID | None,
        name: str | None,
        expires_at: datetime | None,
        created_by: str,
        issued_by_org: UUID | None = None,
    ) -> IssuedKey:
        """Check the scope and what it names, then store a new key's hash (the caller's
        transaction records the audit entry with it). Bad input raises before any write.
        `issued_by_org`: the organisation creating it, when an organisation does (its tenant
        keys are revoked when the tenant leaves it)."""
        if scope not in KEY_SCOPES:
            expected = ", ".join(KEY_SCOPES)
            raise InvalidInput(f"unknown key scope {scope!r}: expected one of {expected}")
        if (scope == "org") != (org_id is not None):
            raise InvalidInput("an org key needs an organisation id, and only an org key has one")
        if (scope == "tenant") != (tenant_id is not None):
            raise InvalidInput("a tenant key needs a tenant id, and only a tenant key has one")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise InvalidInput(f"the expiry {expires_at.isoformat()} is in the past")
        if org_id is not None and not await self._value("org_exists", {"id": org_id}):
            raise UnknownOrganization(f"unknown organisation {org_id}")
        if tenant_id is not None and not await self._value(
            "tenant_exists", {"tenant_id": tenant_id}
        ):
            raise UnknownTenant(f"unknown tenant {tenant_id}")
        key, prefix, digest = new_key()
        record = await self.create(
            NewKey(
                prefix=prefix,
                hash=digest,
                scope=cast(KeyScope, scope),
                org_id=org_id,
                tenant_id=tenant_id,
                name=name,
                created_by=created_by,
                expires_at=expires_at,
                issued_by_org=issued_by_org,
            )
        )
        return IssuedKey(key, record)

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
            "issued_by_org": key.issued_by_org,
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

    async def names_of(self, ids: Sequence[UUID]) -> dict[UUID, str]:
        """The names of these keys that have one, those the caller sees."""
        rows = await self._all(KeyName, "api_key_names", {"ids": list(ids)})
        return {row.id: row.name for row in rows}

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
