"""GET /api/fleet: an agency's dealerships in one call (it took one /api/aoer/summary call a
dealership, and 404 for each never computed), filtered, ordered and paged as the fleet page
is, an organisation seeing its own alone."""

from typing import Any
from uuid import UUID

from aoer.db.pool import Connection
from tests.api.conftest import Api, recompute_through_worker
from tests.api.org_world import OrgWorld, org_bearer, world
from tests.conftest import AddSignals, MakeTenant

__all__ = ["world"]  # the fixture, imported for pytest


async def fleet(api: Api, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await api.client.get("/api/fleet", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_organisation_lists_its_dealerships_with_their_scores_and_no_others(
    api: Api, conn: Connection, world: OrgWorld, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    as_a = org_bearer(api, world.org_a)
    strong, never = await make_tenant("Alpha Toyota"), await make_tenant("Alpha Nissan")
    for t in (strong, never):
        await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (world.org_a, t))
    await add_signals(strong, [{"days_ago": d, "aeo": "95", "geo": "90"} for d in range(4)])
    await recompute_through_worker(conn, [strong])

    body = await fleet(api, as_a, sort="score")
    rows = body["dealerships"]
    assert [r["name"] for r in rows] == ["Alpha Toyota", "Alpha Ford", "Alpha Nissan"]
    assert (body["matching"], body["page"], body["pages"], body["perPage"]) == (3, 1, 1, 100)
    assert (body["sort"], body["descending"], body["sortRefused"]) == ("score", True, None)
    summary = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(strong)}, headers=as_a
    )
    top = rows[0]
    assert UUID(top["tenantId"]) == strong
    for key in ("aoerScore", "visibilityRisk", "grade", "riskLevel", "change7d"):
        assert top[key] == summary.json()[key], key  # the page and the summary agree
    assert rows[2]["aoerScore"] is None  # never computed: listed, last
    assert rows[2]["grade"] is None
    assert {UUID(r["tenantId"]) for r in rows}.isdisjoint({world.b, world.loose})

    # Ascending still puts the never computed last; a name fragment and a grade filter.
    ascending = await fleet(api, as_a, sort="score", order="asc")
    assert [r["name"] for r in ascending["dealerships"]][-1] == "Alpha Nissan"
    named = await fleet(api, as_a, q="toy")
    assert [r["name"] for r in named["dealerships"]] == ["Alpha Toyota"]
    never_computed = await fleet(api, as_a, grade="none")
    assert [r["name"] for r in never_computed["dealerships"]] == ["Alpha Nissan"]
    by_name = await fleet(api, as_a, sort="name", perPage=2, page=2)
    assert [r["name"] for r in by_name["dealerships"]] == ["Alpha Toyota"]
    assert (by_name["descending"], by_name["pages"]) == (False, 2)


async def test_an_administrator_lists_every_dealership_or_one_organisations(
    api: Api, world: OrgWorld
) -> None:
    every = await fleet(api, api.admin, sort="name")
    assert [r["name"] for r in every["dealerships"]] == ["Alpha Ford", "Beta Kia", "Loose Motors"]
    one = await fleet(api, api.admin, orgId=str(world.org_b))
    assert [r["name"] for r in one["dealerships"]] == ["Beta Kia"]


async def test_bad_parameters_and_another_organisation_are_refused_by_name(
    api: Api, world: OrgWorld
) -> None:
    as_a = org_bearer(api, world.org_a)
    other = await api.client.get("/api/fleet", params={"orgId": str(world.org_b)}, headers=as_a)
    assert other.status_code == 403
    assert other.json()["error"] == (f"organisation {world.org_b} is not this token's organisation")
    own = await api.client.get("/api/fleet", params={"orgId": str(world.org_a)}, headers=as_a)
    assert own.status_code == 200
    for params, field in (
        ({"sort": "popularity"}, "sort"),
        ({"order": "up"}, "order"),
        ({"grade": "A+"}, "grade"),
        ({"riskLevel": "Severe"}, "riskLevel"),
        ({"perPage": "501"}, "perPage"),
        ({"page": "0"}, "page"),
        ({"orgId": "nope"}, "orgId"),
    ):
        refused = await api.client.get("/api/fleet", params=params, headers=api.admin)
        assert refused.status_code == 422, (params, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == [field], refused.text
    tenant = await api.client.get("/api/fleet", headers=api.bearer(tenant=world.a))
    assert tenant.status_code == 403
