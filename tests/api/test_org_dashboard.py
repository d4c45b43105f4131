"""The dashboard for organisations (DESIGN §12): an organisation user lands on the fleet of
its own dealerships, titled with its name, totals over those alone; admins filter the fleet
by organisation; the API-key page creates (shown once) and revokes keys through
same-origin forms only, every action audited."""

import re

from aoer.api.auth import LOGIN_PURPOSE, SESSION_COOKIE
from aoer.db.pool import Connection
from tests.api.conftest import Api, count
from tests.api.org_world import OrgWorld, world
from tests.api.test_sessions import same_origin

__all__ = ["world"]  # the fixture, imported for pytest

HTML = {"Accept": "text/html"}


async def sign_in_as_org(api: Api, world: OrgWorld) -> None:
    link = api.tokens.mint("org", org_id=world.org_a, purpose=LOGIN_PURPOSE)
    shown = await api.client.get("/login", params={"token": link}, headers=HTML)
    assert "Alpha Auto Group" in shown.text
    assert "organisation user" in shown.text
    signed = await api.client.post("/login", data={"token": link}, headers=same_origin(api))
    assert signed.status_code == 303, signed.text
    assert api.client.cookies.get(SESSION_COOKIE)


async def test_an_org_user_lands_on_the_fleet_of_its_own_dealerships(
    api: Api, world: OrgWorld
) -> None:
    await sign_in_as_org(api, world)
    home = await api.client.get("/dashboard", headers=HTML)
    assert home.status_code == 303
    assert home.headers["location"] == "/dashboard/fleet"
    fleet = await api.client.get("/dashboard/fleet", headers=HTML)
    assert fleet.status_code == 200, fleet.text
    assert "<title>Alpha Auto Group · Fleet · AOER</title>" in fleet.text
    assert "<h1>Alpha Auto Group</h1>" in fleet.text
    assert str(world.a) in fleet.text
    for hidden in (world.b, world.loose, world.org_b):
        assert str(hidden) not in fleet.text
    assert "Beta" not in fleet.text
    assert "Loose" not in fleet.text
    assert 'data-stat="tenants">1<' in fleet.text
    stats = (await api.client.get("/dashboard/fleet/stats")).json()
    assert stats["totals"]["tenants"] == 1
    assert stats["totals"]["computed"] == 1
    assert stats["nextTick"] is None
    own = await api.client.get(f"/dashboard/tenant/{world.a}", headers=HTML)
    assert own.status_code == 200
    other = await api.client.get(f"/dashboard/tenant/{world.b}", headers=HTML)
    assert other.status_code == 403


async def test_admins_filter_the_fleet_by_organisation(api: Api, world: OrgWorld) -> None:
    everyone = await api.client.get("/dashboard/fleet", headers={**api.admin, **HTML})
    assert 'name="org"' in everyone.text
    assert "Beta Agency (1)" in everyone.text
    assert 'data-stat="tenants">3<' in everyone.text
    one = await api.client.get(
        "/dashboard/fleet", params={"org": str(world.org_b)}, headers={**api.admin, **HTML}
    )
    assert "<h1>Beta Agency</h1>" in one.text
    assert str(world.b) in one.text
    assert str(world.a) not in one.text
    assert 'data-stat="tenants">1<' in one.text
    # The queue, jobs and failures are not filtered: the page says so, not "these alone".
    assert "jobs, the queue, failures and alerts are the whole fleet's" in one.text
    assert one.text.count('<span class="scope">(whole fleet)</span>') == 3
    assert "(whole fleet)" not in everyone.text
    stats = await api.client.get(
        "/dashboard/fleet/stats", params={"org": str(world.org_b)}, headers=api.admin
    )
    assert stats.json()["totals"]["tenants"] == 1


async def test_the_key_page_creates_a_key_shown_once_and_revokes_it(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    await sign_in_as_org(api, world)
    empty = await api.client.get("/dashboard/keys", headers=HTML)
    assert empty.status_code == 200
    assert "No keys yet." in empty.text
    form = {"scope": "tenant", "tenantId": str(world.a), "name": "feed", "expiresInDays": "30"}
    made = await api.client.post("/dashboard/keys", data=form, headers={**same_origin(api), **HTML})
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    key = re.search(r'value="(aoer_[A-Za-z0-9_-]+)"', made.text)
    assert key is not None
    shown_again = await api.client.get("/dashboard/keys", headers=HTML)
    assert key[1] not in shown_again.text
    assert key[1][:12] in shown_again.text
    works = await api.client.get(
        "/api/aoer/summary",
        params={"tenantId": str(world.a)},
        headers={"Authorization": f"Bearer {key[1]}"},
    )
    assert works.status_code == 200
    cur = await conn.execute("SELECT id FROM api_keys")
    key_id = (await cur.fetchone() or {})["id"]
    revoked = await api.client.post(
        f"/dashboard/keys/{key_id}/revoke", headers={**same_origin(api), **HTML}
    )
    assert revoked.status_code == 200
    assert "revoked" in revoked.text
    refused = await api.client.get(
        "/api/aoer/summary",
        params={"tenantId": str(world.a)},
        headers={"Authorization": f"Bearer {key[1]}"},
    )
    assert refused.status_code == 401
    cur = await conn.execute("SELECT action, org_id, actor FROM audit_log ORDER BY id")
    rows = await cur.fetchall()
    assert [(r["action"], r["org_id"]) for r in rows] == [
        ("key.create", world.org_a),
        ("key.revoke", world.org_a),
    ]
    assert {r["actor"] for r in rows} == {f"org:{world.org_a}"}


async def test_key_forms_from_another_site_or_with_bad_input_write_nothing(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    await sign_in_as_org(api, world)
    form = {"scope": "org", "name": "x"}
    cross = await api.client.post(
        "/dashboard/keys", data=form, headers={"Origin": "http://evil.example", **HTML}
    )
    assert cross.status_code == 403
    bare = await api.client.post("/dashboard/keys", data=form, headers=HTML)
    assert bare.status_code == 403, "no Origin, no Sec-Fetch-Site: refused"
    for bad, words in [
        ({"scope": "admin"}, "may not create admin keys"),
        ({"scope": "root"}, "scope"),
        ({"scope": "org", "expiresInDays": "0"}, "expiresInDays"),
        ({"scope": "tenant", "tenantId": str(world.b)}, "not in this token"),
    ]:
        refused = await api.client.post(
            "/dashboard/keys", data=bad, headers={**same_origin(api), **HTML}
        )
        assert refused.status_code in (403, 422), (bad, refused.status_code)
        assert words in refused.text, (bad, refused.text[-500:])
    assert await count(conn, "api_keys") == 0
    assert await count(conn, "audit_log") == 0


async def test_tenant_and_service_users_have_no_key_page(api: Api, world: OrgWorld) -> None:
    for headers in (api.bearer(tenant=world.a), api.bearer("service")):
        page = await api.client.get("/dashboard/keys", headers={**headers, **HTML})
        assert page.status_code == 403


async def test_an_organisation_without_dealerships_is_told_who_adds_them(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    """An organisation user cannot register dealerships: the empty fleet does not tell it to
    (POST /api/tenants is the administrators')."""
    await conn.execute("UPDATE tenants SET org_id = NULL WHERE id = %s", (world.a,))
    await sign_in_as_org(api, world)
    fleet = await api.client.get("/dashboard/fleet", headers=HTML)
    assert fleet.status_code == 200, fleet.text
    assert "No dealerships in this organisation yet: an administrator adds them" in fleet.text
    assert "POST /api/tenants" not in fleet.text
