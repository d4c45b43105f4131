"""The audit log (DESIGN §12): GET /api/audit with filters and keyset paging; an organisation
reads only its own rows; rows cannot be changed or removed."""

import psycopg
import pytest

from aoer.db.pool import Connection, connect
from aoer.store.audit import AuditEntry
from tests.api.conftest import Api
from tests.api.org_world import OrgWorld, org_bearer, world
from tests.conftest import session_of

__all__ = ["world"]  # the fixture, imported for pytest


async def add_entries(conn: Connection, world: OrgWorld) -> None:
    audit = session_of(conn).audit
    for n in range(5):
        await audit.record(AuditEntry("admin", "admin", "job.retry", org_id=world.org_a,
                                      tenant_id=world.a, target=f"a{n}"))  # fmt: skip
    await audit.record(AuditEntry("admin", "admin", "queue.pause", org_id=world.org_b))
    await audit.record(AuditEntry("admin", "admin", "queue.pause"))


async def test_admins_page_through_every_row_newest_first(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    await add_entries(conn, world)
    seen: list[int] = []
    before = None
    while True:
        params = {"limit": 3, **({"before": before} if before else {})}
        page = (await api.client.get("/api/audit", params=params, headers=api.admin)).json()
        seen += [e["id"] for e in page["entries"]]
        before = page["nextBefore"]
        if before is None:
            break
    assert len(seen) == 7
    assert seen == sorted(seen, reverse=True)
    first = (await api.client.get("/api/audit", params={"limit": 1}, headers=api.admin)).json()
    entry = first["entries"][0]
    assert set(entry) == {"id", "at", "actor", "role", "orgId", "tenantId", "action", "target",
                          "details", "ip"}  # fmt: skip
    filtered = await api.client.get(
        "/api/audit", params={"action": "queue.pause", "orgId": str(world.org_b)}, headers=api.admin
    )
    assert [e["orgId"] for e in filtered.json()["entries"]] == [str(world.org_b)]
    by_tenant = await api.client.get(
        "/api/audit", params={"tenantId": str(world.a), "limit": 10}, headers=api.admin
    )
    assert len(by_tenant.json()["entries"]) == 5
    assert by_tenant.json()["nextBefore"] is None


async def test_an_organisation_reads_only_its_own_rows(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    await add_entries(conn, world)
    mine = org_bearer(api, world.org_a)
    rows = (await api.client.get("/api/audit", headers=mine)).json()["entries"]
    assert len(rows) == 5
    assert {r["orgId"] for r in rows} == {str(world.org_a)}
    other = await api.client.get("/api/audit", params={"orgId": str(world.org_b)}, headers=mine)
    assert other.status_code == 403
    for headers in (api.bearer("service"), api.bearer(tenant=world.a)):
        assert (await api.client.get("/api/audit", headers=headers)).status_code == 403


async def test_bad_audit_queries_are_422(api: Api) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"before": 0}, {"before": "x"},
                   {"orgId": "nope"}, {"action": "DROP TABLE"}):  # fmt: skip
        bad = await api.client.get("/api/audit", params=params, headers=api.admin)
        assert bad.status_code == 422, params


async def test_neither_the_owner_nor_the_app_role_can_update_or_delete_audit_rows(
    conn: Connection, owner_db_url: str, world: OrgWorld
) -> None:
    """The app role (this suite's connections) is stopped by its grants, the owner by the
    append-only trigger."""
    await add_entries(conn, world)
    owner = await connect(owner_db_url)
    try:
        for who in (conn, owner):
            for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log",
                        "TRUNCATE audit_log"):  # fmt: skip
                with pytest.raises(
                    psycopg.errors.InsufficientPrivilege, match=r"append-only|permission denied"
                ):
                    async with who.transaction():
                        await who.execute(sql)  # type: ignore[arg-type]
    finally:
        await owner.close()
    cur = await conn.execute("SELECT count(*) AS n FROM audit_log WHERE actor = 'admin'")
    assert await cur.fetchone() == {"n": 7}


async def test_an_organisation_sees_its_dealerships_leave_as_well_as_arrive(
    api: Api, world: OrgWorld
) -> None:
    """A move is one row, under the organisation the dealership went to; the one it left
    reads it too (its keys and rules went with it), by its claims or an admin's ?orgId=."""
    moved = await api.client.patch(
        f"/api/tenants/{world.a}", json={"orgId": str(world.org_b)}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text
    for headers, params in (
        (org_bearer(api, world.org_a), {}),
        (api.admin, {"orgId": str(world.org_a)}),
        (org_bearer(api, world.org_b), {}),
    ):
        moves = (
            await api.client.get(
                "/api/audit", params={**params, "action": "tenant.move"}, headers=headers
            )
        ).json()["entries"]
        assert [(m["tenantId"], m["details"]) for m in moves] == [
            (str(world.a), {"from": str(world.org_a), "to": str(world.org_b)})
        ], headers
    everything = (await api.client.get("/api/audit", headers=api.admin)).json()["entries"]
    assert [e["action"] for e in everything].count("tenant.move") == 1
