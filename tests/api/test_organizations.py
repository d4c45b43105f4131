"""Organisations over HTTP (DESIGN §12): created by admins, each sees only its dealerships;
moving a dealership takes effect on the very next request, cached summaries included."""

import json
from uuid import UUID, uuid4

from aoer.db.pool import Connection
from tests.api.conftest import Api, count, recompute_through_worker
from tests.api.org_world import OrgWorld, org_bearer, world
from tests.conftest import AddSignals, MakeTenant, session_of

__all__ = ["world"]  # the fixture, imported for pytest


async def audit_actions(conn: Connection) -> list[str]:
    cur = await conn.execute("SELECT action FROM audit_log ORDER BY id")
    return [str(r["action"]) for r in await cur.fetchall()]


async def test_admin_creates_an_organisation_and_a_duplicate_name_is_a_409_naming_it(
    api: Api, conn: Connection
) -> None:
    made = await api.client.post("/api/orgs", json={"name": "Carter Group"}, headers=api.admin)
    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) >= {"id", "name", "createdAt"}
    assert body["name"] == "Carter Group"
    again = await api.client.post("/api/orgs", json={"name": " carter GROUP "}, headers=api.admin)
    assert again.status_code == 409
    assert "'carter GROUP'" in again.json()["error"]
    assert "already exists" in again.json()["error"]
    assert await count(conn, "organizations") == 1
    assert await audit_actions(conn) == ["org.create"]


async def test_organisation_bad_input_writes_nothing(api: Api, conn: Connection) -> None:
    for body in ({"name": ""}, {"name": "  "}, {}, {"name": "x", "extra": 1}):
        refused = await api.client.post("/api/orgs", json=body, headers=api.admin)
        assert refused.status_code == 422, body
    assert await count(conn, "organizations") == 0
    assert await count(conn, "audit_log") == 0


async def test_only_admins_create_organisations(api: Api, world: OrgWorld) -> None:
    for headers in (
        org_bearer(api, world.org_a),
        api.bearer("service"),
        api.bearer(tenant=world.a),
    ):
        refused = await api.client.post("/api/orgs", json={"name": "Sneaky"}, headers=headers)
        assert refused.status_code == 403


async def test_an_organisation_lists_only_itself_and_its_dealerships(
    api: Api, world: OrgWorld
) -> None:
    mine = org_bearer(api, world.org_a)
    orgs = (await api.client.get("/api/orgs", headers=mine)).json()["organizations"]
    assert [(o["id"], o["tenants"]) for o in orgs] == [(str(world.org_a), 1)]
    everyone = (await api.client.get("/api/orgs", headers=api.admin)).json()["organizations"]
    assert {o["id"] for o in everyone} == {str(world.org_a), str(world.org_b)}
    tenants = (await api.client.get("/api/tenants", headers=mine)).json()["tenants"]
    assert [(t["id"], t["orgId"]) for t in tenants] == [(str(world.a), str(world.org_a))]
    filtered = await api.client.get(
        "/api/tenants", params={"orgId": str(world.org_b)}, headers=api.admin
    )
    assert [t["id"] for t in filtered.json()["tenants"]] == [str(world.b)]


async def test_registering_a_tenant_in_an_unknown_organisation_writes_nothing(
    api: Api, conn: Connection
) -> None:
    before = await count(conn, "tenants")
    missing = uuid4()
    refused = await api.client.post(
        "/api/tenants", json={"name": "Nowhere Motors", "orgId": str(missing)}, headers=api.admin
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == f"unknown organisation {missing}"
    assert await count(conn, "tenants") == before
    assert await count(conn, "audit_log") == 0


async def test_registering_a_tenant_in_an_organisation_is_audited(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    made = await api.client.post(
        "/api/tenants", json={"name": "Alpha Toyota", "orgId": str(world.org_a)}, headers=api.admin
    )
    assert made.status_code == 201, made.text
    assert made.json()["orgId"] == str(world.org_a)
    cur = await conn.execute("SELECT actor, role, org_id, tenant_id, action FROM audit_log")
    assert await cur.fetchall() == [
        {
            "actor": "admin",
            "role": "admin",
            "org_id": world.org_a,
            "tenant_id": UUID(made.json()["id"]),
            "action": "tenant.create",
        }
    ]


async def test_moving_a_tenant_takes_effect_on_the_very_next_request_cache_included(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    old, new = org_bearer(api, world.org_a), org_bearer(api, world.org_b)
    params = {"tenantId": str(world.a)}
    first = await api.client.get("/api/aoer/summary", params=params, headers=old)
    assert first.status_code == 200  # now cached
    assert (
        await api.client.get("/api/aoer/summary", params=params, headers=new)
    ).status_code == 403
    moved = await api.client.patch(
        f"/api/tenants/{world.a}", json={"orgId": str(world.org_b)}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["orgId"] == str(world.org_b)
    lost = await api.client.get("/api/aoer/summary", params=params, headers=old)
    assert lost.status_code == 403, "the cached summary must not reach the old organisation"
    gained = await api.client.get("/api/aoer/summary", params=params, headers=new)
    assert gained.status_code == 200
    assert gained.json() == first.json()
    old_list = (await api.client.get("/api/tenants", headers=old)).json()["tenants"]
    assert old_list == []
    cur = await conn.execute("SELECT action, org_id, details FROM audit_log")
    assert await cur.fetchall() == [
        {
            "action": "tenant.move",
            "org_id": world.org_b,
            "details": {"from": str(world.org_a), "to": str(world.org_b)},
        }
    ]


async def test_a_moved_tenant_no_longer_shows_its_old_organisations_medians(
    api: Api, conn: Connection, world: OrgWorld, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """The cached summary quotes the old organisation's medians (its recommendations, its
    benchmark); after the move the new organisation reads a fresh one, not A's figures."""
    peers = [await make_tenant(f"Alpha Peer {i}") for i in range(2)]
    for peer in peers:
        await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (world.org_a, peer))
        await add_signals(peer, [{"days_ago": d, "aeo": "90", "geo": "90"} for d in range(4)])
    await recompute_through_worker(conn, peers)
    await session_of(conn).scores.refresh_medians()
    params = {"tenantId": str(world.a)}
    before = await api.client.get("/api/aoer/summary", params=params, headers=api.admin)
    assert before.status_code == 200  # now cached, with Alpha's medians in it
    assert "organisation median (3 dealerships)" in json.dumps(before.json()["recommendations"])
    moved = await api.client.patch(
        f"/api/tenants/{world.a}", json={"orgId": str(world.org_b)}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text
    after = await api.client.get(
        "/api/aoer/summary", params=params, headers=org_bearer(api, world.org_b)
    )
    assert after.status_code == 200
    advice = json.dumps(after.json()["recommendations"])
    assert "organisation median" not in advice, "Alpha's figures reached Beta"
    # Beta has too few dealerships for medians of its own; against the fleet's, A is no
    # longer behind: the advice was computed again, not served from the cache.
    assert after.json()["recommendations"] != before.json()["recommendations"]


async def test_moving_refuses_unknown_tenants_and_organisations_and_non_admins(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    unknown_org = await api.client.patch(
        f"/api/tenants/{world.a}", json={"orgId": str(uuid4())}, headers=api.admin
    )
    assert unknown_org.status_code == 400
    assert "unknown organisation" in unknown_org.json()["error"]
    unknown_tenant = await api.client.patch(
        f"/api/tenants/{uuid4()}", json={"orgId": str(world.org_a)}, headers=api.admin
    )
    assert unknown_tenant.status_code == 404
    by_org = await api.client.patch(
        f"/api/tenants/{world.a}",
        json={"orgId": str(world.org_a)},
        headers=org_bearer(api, world.org_a),
    )
    assert by_org.status_code == 403
    cur = await conn.execute("SELECT org_id FROM tenants WHERE id = %s", (world.a,))
    assert await cur.fetchone() == {"org_id": world.org_a}
    assert await count(conn, "audit_log") == 0


async def test_an_organisation_queues_and_ingests_only_its_own_dealerships(
    api: Api, world: OrgWorld
) -> None:
    mine = org_bearer(api, world.org_a)
    ok = await api.client.post("/api/aoer/queue", json={"tenantId": str(world.a)}, headers=mine)
    assert ok.status_code == 202
    for other in (world.b, world.loose, uuid4()):
        refused = await api.client.post(
            "/api/aoer/queue", json={"tenantId": str(other)}, headers=mine
        )
        assert refused.status_code == 403
    rows = [{"dealerId": str(world.a), "date": "2026-01-02", "aeo": 1}]
    assert (
        await api.client.post("/api/signals", json={"signals": rows}, headers=mine)
    ).status_code == 200
    rows.append({"dealerId": str(world.b), "date": "2026-01-02", "aeo": 1})
    refused = await api.client.post("/api/signals", json={"signals": rows}, headers=mine)
    assert refused.status_code == 403
    assert "row 1" in refused.json()["error"]


async def test_an_agency_renames_and_deactivates_a_dealership_it_no_longer_serves(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    """PATCH /api/tenants/{id} changes a name or the active flag (and the organisation, as
    before), audited as tenant.change with what was and what is; an inactive dealership is
    refused new jobs and left out of the scheduled refresh, its data kept."""
    url = f"/api/tenants/{world.a}"
    waiting = await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(world.a)}, headers=api.admin
    )
    assert waiting.status_code == 202  # cancelled with the deactivation
    changed = await api.client.patch(
        url, json={"name": "  Lakeside Ford (closed) ", "active": False}, headers=api.admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["active"]) == ("Lakeside Ford (closed)", False)
    assert changed.json()["orgId"] == str(world.org_a), "left where it was"
    cur = await conn.execute(
        "SELECT org_id, tenant_id, details FROM audit_log WHERE action = 'tenant.change'"
    )
    [entry] = await cur.fetchall()
    assert (entry["org_id"], entry["tenant_id"]) == (world.org_a, world.a)
    assert entry["details"]["active"] == {"from": True, "to": False}
    assert entry["details"]["name"]["to"] == "Lakeside Ford (closed)"
    assert entry["details"]["cancelledJobs"] == 1

    queued = await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(world.a)}, headers=api.admin
    )
    assert queued.status_code in (400, 404, 409, 422), queued.text
    cron = (await api.client.get("/api/aoer/cron", headers=api.admin)).json()
    cur = await conn.execute(
        "SELECT count(*) AS n FROM aoer_queue WHERE tenant_id = %s AND status = 'queued'",
        (world.a,),
    )
    assert (await cur.fetchone())["n"] == 0, cron  # type: ignore[index]

    for body, status, words in (
        ({}, 422, "nothing to change"),
        ({"active": None}, 422, "true or false"),
        ({"name": "   "}, 422, "name"),
        ({"name": "beta kia"}, 409, "already exists"),
    ):
        refused = await api.client.patch(url, json=body, headers=api.admin)
        assert refused.status_code == status, (body, refused.text)
        assert words in refused.json()["error"], (body, refused.json())
    again = await api.client.patch(url, json={"active": True}, headers=api.admin)
    assert again.json()["active"] is True
    assert (await audit_actions(conn)).count("tenant.change") == 2, "the refusals wrote nothing"
    # Made active again, it is queued: what it received while inactive was never recomputed.
    cur = await conn.execute(
        "SELECT count(*) AS n FROM aoer_queue WHERE tenant_id = %s AND status = 'queued'",
        (world.a,),
    )
    assert (await cur.fetchone())["n"] == 1  # type: ignore[index]
    renamed = await api.client.patch(url, json={"name": "Lakeside Ford"}, headers=api.admin)
    assert renamed.status_code == 200, "a rename while active queues nothing more"
    # Renamed as it moves: the new name is the new organisation's to read, not the old one's.
    both = await api.client.patch(
        url, json={"name": "Gamma Ford", "orgId": str(world.org_b)}, headers=api.admin
    )
    assert both.status_code == 200, both.text
    cur = await conn.execute(
        "SELECT org_id FROM audit_log WHERE action = 'tenant.change' ORDER BY id DESC LIMIT 1"
    )
    assert await cur.fetchone() == {"org_id": world.org_b}
