"""Two organisations with a dealership each (scores computed), for the organisation tests."""

from dataclasses import dataclass
from uuid import UUID

import pytest

from aoer.db.pool import Connection
from tests.api.conftest import Api, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant


@dataclass(frozen=True)
class OrgWorld:
    org_a: UUID
    org_b: UUID
    a: UUID  # a dealership of org A
    b: UUID  # a dealership of org B
    loose: UUID  # a dealership in no organisation


async def new_org(conn: Connection, name: str) -> UUID:
    cur = await conn.execute("INSERT INTO organizations (name) VALUES (%s) RETURNING id", (name,))
    row = await cur.fetchone()
    assert row is not None
    return UUID(str(row["id"]))


@pytest.fixture
async def world(conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals) -> OrgWorld:
    org_a, org_b = await new_org(conn, "Alpha Auto Group"), await new_org(conn, "Beta Agency")
    a, b, loose = (
        await make_tenant("Alpha Ford"),
        await make_tenant("Beta Kia"),
        await make_tenant("Loose Motors"),
    )
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org_a, a))
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org_b, b))
    for t in (a, b, loose):
        await add_signals(t, [{"days_ago": d, "aeo": "60", "geo": "50"} for d in range(4)])
    await recompute_through_worker(conn, [a, b, loose])
    return OrgWorld(org_a, org_b, a, b, loose)


def org_bearer(api: Api, org_id: UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.tokens.mint('org', org_id=org_id)}"}
