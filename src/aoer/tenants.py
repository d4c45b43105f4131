"""Registering and listing dealerships."""

from typing import cast
from uuid import UUID

import psycopg

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.errors import InvalidInput
from aoer.types import JsonObject, Tenant


def _tenant(row: JsonObject) -> Tenant:
    return Tenant(**row)


async def create_tenant(
    conn: Connection,
    name: str,
    *,
    tenant_id: UUID | None = None,
    domain: str | None = None,
    city: str | None = None,
    region: str | None = None,
    active: bool = True,
) -> Tenant:
    if not name.strip():
        raise InvalidInput("tenant name must not be empty")
    params = {
        "id": tenant_id,
        "name": name.strip(),
        "domain": domain,
        "city": city,
        "region": region,
        "active": active,
    }
    try:
        async with conn.transaction():
            cur = await conn.execute(query("create_tenant"), params)
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise InvalidInput(f"a tenant with id {tenant_id} already exists") from None
    assert row is not None
    return _tenant(cast(JsonObject, row))


async def list_tenants(
    conn: Connection, *, tenant_id: UUID | None = None, limit: int = 1000, offset: int = 0
) -> list[Tenant]:
    cur = await conn.execute(
        query("list_tenants"), {"tenant_id": tenant_id, "limit": limit, "offset": offset}
    )
    return [_tenant(cast(JsonObject, r)) for r in await cur.fetchall()]
