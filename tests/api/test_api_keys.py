"""API keys over HTTP (DESIGN §12): shown once, stored hashed, scoped, expiring, revocable;
`Authorization: Bearer aoer_…` works wherever a token does."""

import hashlib
from typing import Any
from uuid import UUID, uuid4

from aoer.db.pool import Connection
from tests.api.conftest import Api, count
from tests.api.org_world import OrgWorld, org_bearer, world

__all__ = ["world"]  # the fixture, imported for pytest


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create(api: Api, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    made = await api.client.post("/api/keys", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_a_key_is_shown_once_stored_hashed_and_works_like_a_token(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    made = await create(api, api.admin, scope="org", orgId=str(world.org_a), name="reporting")
    assert set(made) == {
        "id",
        "key",
        "scope",
        "orgId",
        "tenantId",
        "name",
        "expiresAt",
        "createdAt",
    }
    key = made["key"]
    assert key.startswith("aoer_")
    assert len(key) >= 5 + 43  # 32 random bytes, URL-safe
    cur = await conn.execute("SELECT hash, prefix FROM api_keys")
    row = await cur.fetchone()
    assert row == {"hash": hashlib.sha256(key.encode()).hexdigest(), "prefix": key[:12]}
    own = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(world.a)}, headers=bearer(key)
    )
    assert own.status_code == 200
    other = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(world.b)}, headers=bearer(key)
    )
    assert other.status_code == 403
    listed = (await api.client.get("/api/keys", headers=api.admin)).json()["keys"]
    assert [k["id"] for k in listed] == [made["id"]]
    assert "key" not in listed[0]
    assert listed[0]["prefix"] == key[:12]


async def test_a_revoked_key_is_refused_at_once_and_an_expired_one_too(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    made = await create(api, api.admin, scope="admin")
    assert (await api.client.get("/api/tenants", headers=bearer(made["key"]))).status_code == 200
    gone = await api.client.delete(f"/api/keys/{made['id']}", headers=api.admin)
    assert gone.status_code == 204
    refused = await api.client.get("/api/tenants", headers=bearer(made["key"]))
    assert refused.status_code == 401
    assert refused.json()["error"] == "the API key was revoked"
    again = await api.client.delete(f"/api/keys/{made['id']}", headers=api.admin)
    assert again.status_code == 204  # revoking twice is no error, and audited once
    expiring = await create(api, api.admin, scope="service", expiresInDays=1)
    headers = bearer(expiring["key"])
    assert (await api.client.get("/api/tenants", headers=headers)).status_code == 200
    await conn.execute(
        "UPDATE api_keys SET created_at = now() - interval '2 days',"
        " expires_at = now() - interval '1 second' WHERE id = %s",
        (expiring["id"],),
    )
    api.ctx.keys.forget(UUID(expiring["id"]))  # what a fresh process would know
    expired = await api.client.get("/api/tenants", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["error"] == "the API key has expired"
    cur = await conn.execute("SELECT action FROM audit_log ORDER BY id")
    assert [r["action"] for r in await cur.fetchall()] == ["key.create", "key.revoke", "key.create"]


async def test_an_unknown_key_is_refused_and_remembered(api: Api, conn: Connection) -> None:
    unknown = "aoer_" + "x" * 43
    refused = await api.client.get("/api/tenants", headers=bearer(unknown))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid API key"
    # Keys are random: one refused as unknown is never read again (a flood of bad keys
    # costs the database nothing), even if a row with its hash appeared.
    await conn.execute(
        "INSERT INTO api_keys (prefix, hash, scope, created_by)"
        " VALUES ('aoer_x', %s, 'admin', 't')",
        (hashlib.sha256(unknown.encode()).hexdigest(),),
    )
    again = await api.client.get("/api/tenants", headers=bearer(unknown))
    assert again.status_code == 401


async def test_bad_key_requests_are_4xx_and_write_nothing(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"scope": "root"}, 422, "scope"),
        ({"scope": "admin", "expiresInDays": 0}, 422, "expiresInDays"),
        ({"scope": "admin", "expiresInDays": -3}, 422, "expiresInDays"),
        ({"scope": "org", "orgId": str(uuid4())}, 400, "unknown organisation"),
        ({"scope": "org"}, 400, "needs an organisation id"),
        ({"scope": "tenant", "tenantId": str(uuid4())}, 404, "unknown tenant"),
        ({"scope": "admin", "tenantId": str(world.a)}, 400, "only a tenant key"),
        ({"scope": "admin", "colour": "red"}, 422, "colour"),
    ]
    for body, status, words in cases:
        refused = await api.client.post("/api/keys", json=body, headers=api.admin)
        assert refused.status_code == status, (body, refused.text)
        assert words in refused.text, (body, refused.text)
    assert await count(conn, "api_keys") == 0
    assert await count(conn, "audit_log") == 0


async def test_an_organisation_manages_only_its_own_and_its_dealerships_keys(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    mine, theirs = org_bearer(api, world.org_a), org_bearer(api, world.org_b)
    org_key = await create(api, mine, scope="org")
    assert org_key["orgId"] == str(world.org_a)
    tenant_key = await create(api, mine, scope="tenant", tenantId=str(world.a))
    other = await create(api, theirs, scope="org")
    admin_key = await create(api, api.admin, scope="admin")
    listed = (await api.client.get("/api/keys", headers=mine)).json()["keys"]
    assert {k["id"] for k in listed} == {org_key["id"], tenant_key["id"]}
    page = (await api.client.get("/dashboard/keys", headers=mine)).text
    assert f'href="/dashboard/tenant/{world.a}">Alpha Ford</a>' in page  # named, of fifty
    forbidden = [
        {"scope": "admin"},
        {"scope": "service"},
        {"scope": "org", "orgId": str(world.org_b)},
        {"scope": "tenant", "tenantId": str(world.b)},
    ]
    for body in forbidden:
        refused = await api.client.post("/api/keys", json=body, headers=mine)
        assert refused.status_code == 403, body
    for key in (other, admin_key):
        hidden = await api.client.delete(f"/api/keys/{key['id']}", headers=mine)
        assert hidden.status_code == 404
    assert (
        await api.client.delete(f"/api/keys/{tenant_key['id']}", headers=mine)
    ).status_code == 204
    cur = await conn.execute("SELECT id FROM api_keys WHERE revoked_at IS NOT NULL")
    assert [str(r["id"]) for r in await cur.fetchall()] == [tenant_key["id"]]
    cur = await conn.execute(
        "SELECT action, org_id, tenant_id FROM audit_log WHERE action = 'key.revoke'"
    )
    assert await cur.fetchall() == [
        {"action": "key.revoke", "org_id": world.org_a, "tenant_id": world.a}
    ]
    for headers in (api.bearer("service"), api.bearer(tenant=world.a)):
        assert (await api.client.get("/api/keys", headers=headers)).status_code == 403


async def test_last_used_is_written_at_most_once_a_minute_per_key(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    made = await create(api, api.admin, scope="service")
    for _ in range(3):
        assert (
            await api.client.get("/api/tenants", headers=bearer(made["key"]))
        ).status_code == 200
    await api.ctx.keys.flush_last_used()  # never written: due now (unless the loop just did)
    cur = await conn.execute("SELECT last_used_at FROM api_keys")
    first = (await cur.fetchone() or {})["last_used_at"]
    assert first is not None
    assert (await api.client.get("/api/tenants", headers=bearer(made["key"]))).status_code == 200
    assert await api.ctx.keys.flush_last_used() == 0, "written less than a minute ago"
    listed = (await api.client.get("/api/keys", headers=api.admin)).json()["keys"]
    assert listed[0]["lastUsedAt"] is not None


async def test_a_tenant_key_its_organisation_issued_stops_when_the_tenant_leaves(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    """DESIGN §12: a tenant moved to another organisation disappears from the old one at
    once, keys included. A key the old organisation issued for it is revoked with the move
    (it could neither see nor revoke it afterwards); a key an administrator issued stays."""
    by_org = await create(
        api, org_bearer(api, world.org_a), scope="tenant", tenantId=str(world.a), name="site"
    )
    by_admin = await create(api, api.admin, scope="tenant", tenantId=str(world.a))
    summary = {"tenantId": str(world.a)}
    for made in (by_org, by_admin):
        used = await api.client.get(
            "/api/aoer/summary", params=summary, headers=bearer(made["key"])
        )
        assert used.status_code == 200

    moved = await api.client.patch(
        f"/api/tenants/{world.a}", json={"orgId": str(world.org_b)}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text

    refused = await api.client.get(
        "/api/aoer/summary", params=summary, headers=bearer(by_org["key"])
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "the API key was revoked"
    kept = await api.client.get(
        "/api/aoer/summary", params=summary, headers=bearer(by_admin["key"])
    )
    assert kept.status_code == 200
    cur = await conn.execute(
        "SELECT action, target, org_id, details ->> 'reason' AS reason FROM audit_log"
        " WHERE action IN ('tenant.move', 'key.revoke') ORDER BY id"
    )
    assert [tuple(r.values()) for r in await cur.fetchall()] == [
        ("tenant.move", str(world.a), world.org_b, None),
        (
            "key.revoke",
            by_org["id"],
            world.org_a,
            "the tenant left the organisation that issued the key",
        ),
    ]

    # The revoked key stays with the organisation that issued it: the one the tenant moved
    # into never sees it (its name and its issuer's integrator key were shown there), while
    # the administrator's key follows the tenant.
    def listed(org: UUID) -> Any:
        return api.client.get("/api/keys", headers=org_bearer(api, org))

    old = {k["id"]: k["revokedAt"] is not None for k in (await listed(world.org_a)).json()["keys"]}
    assert old == {by_org["id"]: True}
    new = {k["id"]: k["revokedAt"] is not None for k in (await listed(world.org_b)).json()["keys"]}
    assert new == {by_admin["id"]: False}
    hidden = await api.client.delete(
        f"/api/keys/{by_org['id']}", headers=org_bearer(api, world.org_b)
    )
    assert hidden.status_code == 404
    # The old organisation's keys page names the dealership as gone, not by a dead link.
    page = await api.client.get("/dashboard/keys", headers=org_bearer(api, world.org_a))
    assert "a dealership no longer in your organisation" in page.text


async def test_a_key_revoked_right_after_a_use_still_shows_that_use(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    """A leaked key used and revoked within a second showed 'never used': revoking dropped
    the cached key with its last use before it was written."""
    made = await create(api, api.admin, scope="service", name="leaked")
    assert (await api.client.get("/api/tenants", headers=bearer(made["key"]))).status_code == 200
    revoked = await api.client.delete(f"/api/keys/{made['id']}", headers=api.admin)
    assert revoked.status_code in (200, 204), revoked.text
    await api.ctx.keys.flush_last_used()
    cur = await conn.execute("SELECT last_used_at, revoked_at FROM api_keys")
    row = await cur.fetchone() or {}
    assert row["revoked_at"] is not None
    assert row["last_used_at"] is not None, "the use before the revocation was kept"
    assert row["last_used_at"] <= row["revoked_at"]
    assert await api.ctx.keys.flush_last_used() == 0, "written once"
