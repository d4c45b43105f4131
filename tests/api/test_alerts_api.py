"""The alerts API (DESIGN §13): rules, endpoints, the test ping and the feed; who may do what;
bad input refused with nothing written; every change audited."""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from aoer.api.auth import Principal
from aoer.api.routes.alerts import alert_caller
from aoer.db.pool import Connection
from aoer.store import Scope
from tests.acceptance.conftest import run_aoer
from tests.alerts.conftest import Receiver, receiver  # noqa: F401 (the fixture)
from tests.api.conftest import Api, ApiFactory, count, recompute_through_worker
from tests.api.test_stream import open_stream
from tests.conftest import AddSignals, MakeTenant, promote_a_model_three_days_ago

STEADY = [{"days_ago": d, "aeo": "80.00", "geo": "80.00", "ugc": "80.00"} for d in range(10)]


@dataclass(frozen=True, slots=True)
class OrgPrincipal(Principal):
    """An organisation's caller as the org role presents it: a scope carrying `org_id`."""

    org: UUID | None = None

    @property
    def scope(self) -> Scope | None:
        return Scope({"sub": self.subject, "role": "org", "org_id": str(self.org)})


def act_as_org(api: Api, org: UUID) -> None:
    """Requests without credentials now act as `org` (the org role lands on another branch)."""
    principal = OrgPrincipal("org:test", "admin", None, datetime.max.replace(tzinfo=UTC), org=org)
    api.app.dependency_overrides[alert_caller] = lambda: principal


async def new_org(conn: Connection, name: str) -> UUID:
    cur = await conn.execute("INSERT INTO organizations (name) VALUES (%s) RETURNING id", (name,))
    row = await cur.fetchone()
    assert row is not None
    return row["id"]  # type: ignore[return-value]


async def tenant_in(conn: Connection, make_tenant: MakeTenant, org: UUID, name: str) -> UUID:
    tenant = await make_tenant(name)
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org, tenant))
    return tenant


async def audit_actions(conn: Connection) -> list[str]:
    cur = await conn.execute("SELECT action FROM audit_log ORDER BY id")
    return [r["action"] for r in await cur.fetchall()]  # type: ignore[misc]


async def post(
    api: Api, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return await api.client.post(path, json=body, headers=api.admin if headers is None else headers)


async def test_an_endpoint_is_created_with_a_generated_secret_shown_once(
    api: Api, conn: Connection
) -> None:
    created = await post(api, "/api/alerts/endpoints", {"url": "https://hooks.example.com/aoer"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert {"id", "url", "secret", "active", "createdAt"} <= set(body)
    assert body["secret"].startswith("whsec_")
    assert body["active"] is True
    listed = await api.client.get("/api/alerts/endpoints", headers=api.admin)
    assert listed.status_code == 200
    [shown] = listed.json()["endpoints"]
    assert shown["id"] == body["id"]
    assert "secret" not in shown
    assert await audit_actions(conn) == ["alert_endpoint.create"]
    gone = await api.client.delete(f"/api/alerts/endpoints/{body['id']}", headers=api.admin)
    assert gone.status_code == 204
    assert await count(conn, "alert_endpoints") == 0
    assert await audit_actions(conn) == ["alert_endpoint.create", "alert_endpoint.delete"]
    again = await api.client.delete(f"/api/alerts/endpoints/{body['id']}", headers=api.admin)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "ftp://example.com/x"}, "http:// or https://"),
        ({"url": "example.com/hook"}, "http:// or https://"),
        ({"url": "http://"}, "must name a host"),
        ({"url": "https://example.com", "secret": "nope"}, "whsec_"),
        ({"url": "https://example.com", "secret": "whsec_c2hvcnQ="}, "at least 16 bytes"),
        ({"url": "https://example.com", "orgId": str(uuid4())}, "unknown organisation"),
    ],
)
async def test_bad_endpoints_are_refused_and_nothing_is_written(
    api: Api, conn: Connection, body: dict[str, Any], words: str
) -> None:
    response = await post(api, "/api/alerts/endpoints", body)
    assert 400 <= response.status_code < 500
    assert words in response.json()["error"]
    assert await count(conn, "alert_endpoints") == 0
    assert await count(conn, "audit_log") == 0


async def test_a_rule_is_created_listed_and_deleted_with_an_audit_trail(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    endpoint = (await post(api, "/api/alerts/endpoints", {"url": "http://127.0.0.1:9/h"})).json()
    created = await post(
        api,
        "/api/alerts/rules",
        {
            "kind": "score_drop",
            "tenantId": str(tenant),
            "points": 5,
            "days": 7,
            "endpointIds": [endpoint["id"]],
            "emails": ["ops@example.com"],
        },
    )
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["kind"] == "score_drop"
    assert (rule["scope"], rule["tenantId"], rule["orgId"]) == ("tenant", str(tenant), None)
    assert (rule["points"], rule["days"]) == (5, 7)
    assert rule["endpointIds"] == [endpoint["id"]]
    assert rule["emails"] == ["ops@example.com"]
    listed = await api.client.get(
        "/api/alerts/rules", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert [r["id"] for r in listed.json()["rules"]] == [rule["id"]]
    assert (
        await api.client.delete(f"/api/alerts/rules/{rule['id']}", headers=api.admin)
    ).status_code == 204
    assert await count(conn, "alert_rules") == 0
    assert await audit_actions(conn) == [
        "alert_endpoint.create",
        "alert_rule.create",
        "alert_rule.delete",
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": "score_explodes"}, "unknown alert kind 'score_explodes'"),
        ({"kind": "score_drop", "points": -5}, "points must be positive"),
        ({"kind": "score_drop"}, "needs points"),
        ({"kind": "score_drop", "points": 5, "days": 0}, "days must be between 1 and 365"),
        ({"kind": "grade_down", "points": 5}, "points apply only to score_drop"),
        ({"kind": "grade_down", "emails": ["not-an-address"]}, "not an e-mail address"),
        ({"kind": "grade_down", "endpointIds": [str(uuid4())]}, "unknown alert endpoints"),
        ({"kind": "grade_down", "tenant": None}, "tenantId or orgId"),
    ],
)
async def test_bad_rules_are_refused_and_nothing_is_written(
    api: Api, conn: Connection, make_tenant: MakeTenant, body: dict[str, Any], words: str
) -> None:
    tenant = await make_tenant()
    body = {"kind": body["kind"]} if "tenant" in body else {"tenantId": str(tenant), **body}
    response = await post(api, "/api/alerts/rules", body)
    assert 400 <= response.status_code < 500, response.text
    assert words in response.json()["error"]
    assert await count(conn, "alert_rules") == 0
    assert await count(conn, "audit_log") == 0


async def test_an_organisation_manages_only_its_own_rules_and_endpoints(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    mine, theirs = await new_org(conn, "Mine"), await new_org(conn, "Theirs")
    my_tenant = await tenant_in(conn, make_tenant, mine, "My Motors")
    their_tenant = await tenant_in(conn, make_tenant, theirs, "Their Motors")
    their_endpoint = (
        await post(
            api, "/api/alerts/endpoints", {"url": "http://t.example/h", "orgId": str(theirs)}
        )
    ).json()
    their_rule = (
        await post(api, "/api/alerts/rules", {"kind": "grade_down", "orgId": str(theirs)})
    ).json()
    cur = await conn.execute("SELECT max(id) AS last FROM audit_log")
    before = (await cur.fetchone())["last"]  # type: ignore[index]
    act_as_org(api, mine)

    refused = await post(
        api, "/api/alerts/rules", {"kind": "grade_down", "tenantId": str(their_tenant)}
    )
    assert refused.status_code == 404
    assert f"unknown tenant {their_tenant} in your organisation" in refused.json()["error"]
    other_org = await post(api, "/api/alerts/rules", {"kind": "grade_down", "orgId": str(theirs)})
    assert other_org.status_code == 403
    assert "is not yours" in other_org.json()["error"]
    foreign_endpoint = await post(
        api,
        "/api/alerts/rules",
        {"kind": "grade_down", "tenantId": str(my_tenant), "endpointIds": [their_endpoint["id"]]},
    )
    assert foreign_endpoint.status_code == 400
    assert "unknown alert endpoints" in foreign_endpoint.json()["error"]
    assert await count(conn, "alert_rules") == 1
    assert await count(conn, "audit_log") == 2, "the admin's two changes only"

    endpoint = (await post(api, "/api/alerts/endpoints", {"url": "https://mine.example/h"})).json()
    assert endpoint["orgId"] == str(mine)
    rule = await post(
        api,
        "/api/alerts/rules",
        {"kind": "risk_level_up", "tenantId": str(my_tenant), "endpointIds": [endpoint["id"]]},
    )
    assert rule.status_code == 201, rule.text
    org_rule = await post(api, "/api/alerts/rules", {"kind": "job_failed", "orgId": str(mine)})
    assert org_rule.status_code == 201
    seen = {r["id"] for r in (await api.client.get("/api/alerts/rules")).json()["rules"]}
    assert seen == {rule.json()["id"], org_rule.json()["id"]}
    endpoints = (await api.client.get("/api/alerts/endpoints")).json()["endpoints"]
    assert [e["id"] for e in endpoints] == [endpoint["id"]]
    gone = await api.client.delete(f"/api/alerts/rules/{their_rule['id']}")
    assert gone.status_code == 404
    cur = await conn.execute("SELECT DISTINCT org_id FROM audit_log WHERE id > %s", (before,))
    assert [r["org_id"] for r in await cur.fetchall()] == [mine]


async def test_a_rule_repeating_another_is_refused_not_sent_twice(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    """Two identical rules raised every alert twice, under two webhook-ids a receiver
    cannot tell apart. A repeat is refused naming the rule there is; a rule telling other
    channels, or watching for another crossing, is not a repeat."""
    tenant = await make_tenant("Twice Motors")
    endpoint = (await post(api, "/api/alerts/endpoints", {"url": "https://h.example/1"})).json()
    first = {
        "kind": "score_drop",
        "tenantId": str(tenant),
        "points": 5,
        "days": 7,
        "endpointIds": [endpoint["id"]],
        "emails": ["gm@twice.example"],
    }
    made = await post(api, "/api/alerts/rules", first)
    assert made.status_code == 201, made.text
    before = await audit_actions(conn)

    again = await post(api, "/api/alerts/rules", {**first, "emails": ["GM@twice.example"]})
    assert again.status_code == 409
    assert again.json()["error"] == (
        f"alert rule {made.json()['id']} already raises score_drop for the same tenant and"
        f" tells {endpoint['id']}, gm@twice.example: a second one would send each alert twice"
        " (delete it first to change it)"
    )
    assert await count(conn, "alert_rules") == 1
    assert await audit_actions(conn) == before

    other_channel = {**first, "endpointIds": [], "emails": ["owner@twice.example"]}
    assert (await post(api, "/api/alerts/rules", other_channel)).status_code == 201
    other_drop = {**first, "points": 10}
    assert (await post(api, "/api/alerts/rules", other_drop)).status_code == 201
    feed_only = {"kind": "grade_down", "tenantId": str(tenant)}
    assert (await post(api, "/api/alerts/rules", feed_only)).status_code == 201
    repeat = await post(api, "/api/alerts/rules", feed_only)
    assert repeat.status_code == 409
    assert (
        "and tells the feed only: a second one would raise each alert twice"
        in (repeat.json()["error"])
    )
    # A feed-only rule beside one with channels only doubles the feed, either way round.
    told = await post(api, "/api/alerts/rules", {**feed_only, "emails": ["gm@twice.example"]})
    assert told.status_code == 409
    assert "and tells the feed only" in told.json()["error"]
    quiet = await post(api, "/api/alerts/rules", {**first, "endpointIds": [], "emails": []})
    assert quiet.status_code == 409
    assert "a second one would raise each alert twice" in quiet.json()["error"]
    assert await count(conn, "alert_rules") == 4


async def test_a_tenant_reads_its_rules_and_alerts_but_changes_nothing(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant, other = await make_tenant("Mine"), await make_tenant("Other")
    for t in (tenant, other):
        await post(api, "/api/alerts/rules", {"kind": "grade_down", "tenantId": str(t)})
    as_tenant = api.bearer(tenant=tenant)
    rules = (await api.client.get("/api/alerts/rules", headers=as_tenant)).json()["rules"]
    assert [r["tenantId"] for r in rules] == [str(tenant)]
    refused = await post(
        api, "/api/alerts/rules", {"kind": "grade_down", "tenantId": str(tenant)}, as_tenant
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        "role tenant may read alerts and rules, not change rules or endpoints (allowed: admin, org)"
    )
    endpoints = await api.client.get("/api/alerts/endpoints", headers=as_tenant)
    assert endpoints.status_code == 403
    assert endpoints.json()["error"] == (  # a read refused is not called a change
        "role tenant may read alerts and rules, not webhook endpoints (allowed: admin, org)"
    )
    feed = await api.client.get("/api/alerts", headers=as_tenant)
    assert feed.status_code == 200
    service = await api.client.get("/api/alerts", headers=api.bearer("service"))
    assert service.status_code == 403


async def test_the_feed_lists_alerts_with_their_deliveries(
    api: Api,
    conn: Connection,
    make_tenant: MakeTenant,
    add_signals: AddSignals,
    db_url: str,
    tmp_path: Path,
) -> None:
    tenant = await make_tenant("Feed Motors")
    await add_signals(tenant, STEADY)
    endpoint = (await post(api, "/api/alerts/endpoints", {"url": "http://127.0.0.1:9/h"})).json()
    await post(
        api,
        "/api/alerts/rules",
        {"kind": "risk_level_up", "tenantId": str(tenant), "endpointIds": [endpoint["id"]]},
    )
    await recompute_through_worker(conn, [tenant])
    await conn.execute(
        "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1", (tenant,)
    )
    await recompute_through_worker(conn, [tenant])
    response = await api.client.get(
        "/api/alerts", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert response.status_code == 200
    [alert] = response.json()["alerts"]
    assert {"id", "kind", "tenantId", "createdAt", "data", "deliveries"} <= set(alert)
    assert alert["kind"] == "risk_level_up"
    assert alert["data"]["current"]["riskLevel"] == "High"
    [delivery] = alert["deliveries"]
    assert delivery["endpointId"] == endpoint["id"]
    assert (delivery["status"], delivery["attempts"], delivery["lastStatusCode"]) == (
        "pending",
        0,
        None,
    )
    later = await api.client.get(
        "/api/alerts", params={"since": "2999-01-01T00:00:00Z"}, headers=api.admin
    )
    assert later.json()["alerts"] == []
    # The CLI's --json is the API's answer, to the value: scores as numbers, times in Z, a
    # rule's unused parameters null (it wrote "6.72", "+00:00" and left them out).
    cli = partial(run_aoer, db_url, tmp_path)
    feed = json.loads(cli("alerts", "list", "--tenant", str(tenant), "--json").stdout)
    assert feed["alerts"] == response.json()["alerts"]
    assert isinstance(feed["alerts"][0]["data"]["current"]["aoerScore"], float)
    rules = await api.client.get("/api/alerts/rules", headers=api.admin)
    assert json.loads(cli("alerts", "rules", "--json").stdout) == rules.json()
    endpoints = await api.client.get("/api/alerts/endpoints", headers=api.admin)
    assert json.loads(cli("alerts", "endpoints", "--json").stdout) == endpoints.json()


async def test_the_endpoint_test_sends_a_signed_ping(
    api: Api,
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
) -> None:
    receiver.start()
    endpoint = (
        await post(api, "/api/alerts/endpoints", {"url": receiver.url, "secret": receiver.secret})
    ).json()
    response = await api.client.post(
        f"/api/alerts/endpoints/{endpoint['id']}/test", headers=api.admin
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["delivered"], body["statusCode"]) == (True, 200)
    [received] = receiver.records()
    assert received["verified"] is True
    assert received["id"] == body["webhookId"]
    assert received["payload"]["type"] == "ping"
    receiver.mode("fail")
    failed = await api.client.post(
        f"/api/alerts/endpoints/{endpoint['id']}/test", headers=api.admin
    )
    assert (failed.json()["delivered"], failed.json()["statusCode"]) == (False, 500)


async def test_a_raised_alert_reaches_the_tenants_live_stream(
    make_api: ApiFactory, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    api = await make_api(live=True)
    tenant = await make_tenant("Live Motors")
    await add_signals(tenant, STEADY)
    await post(api, "/api/alerts/rules", {"kind": "risk_level_up", "tenantId": str(tenant)})
    await recompute_through_worker(conn, [tenant])
    await conn.execute(
        "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1", (tenant,)
    )
    async with open_stream(api, tenant, api.bearer(tenant=tenant)) as events:
        await events.until("summary")
        await recompute_through_worker(conn, [tenant])
        alert = await events.until("alert")
    assert alert["kind"] == "risk_level_up"
    assert alert["tenantId"] == str(tenant)
    assert alert["data"]["current"]["aoerScore"] == 80  # a JSON number


async def test_the_alerts_page_lets_admins_manage_and_tenants_read(
    api: Api, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("Page <Motors>")
    await post(api, "/api/alerts/endpoints", {"url": "https://hooks.example.com/x"})
    await post(api, "/api/alerts/rules", {"kind": "grade_down", "tenantId": str(tenant)})
    admin = await api.client.get("/dashboard/alerts", headers=api.admin)
    assert admin.status_code == 200
    html = admin.text
    assert 'id="rule-form"' in html
    assert 'id="endpoint-form"' in html
    assert "https://hooks.example.com/x" in html
    assert "Page &lt;Motors&gt;" in html  # escaped
    reader = await api.client.get("/dashboard/alerts", headers=api.bearer(tenant=tenant))
    assert reader.status_code == 200
    assert "Grade falls" in reader.text
    assert 'id="rule-form"' not in reader.text
    assert "hooks.example.com" not in reader.text
    service = await api.client.get("/dashboard/alerts", headers=api.bearer("service"))
    assert service.status_code == 403
    page = await api.client.get(f"/dashboard/tenant/{tenant}", headers=api.admin)
    assert 'id="alerts-card"' in page.text
    assert f"/api/alerts?limit=15&amp;tenantId={tenant}" in page.text


async def test_history_marks_the_tenants_own_alerts_on_the_trend(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    mine, other = await make_tenant("Marked Motors"), await make_tenant("Other Motors")
    for tenant in (mine, other):
        await add_signals(tenant, STEADY)
        await post(api, "/api/alerts/rules", {"kind": "risk_level_up", "tenantId": str(tenant)})
    await recompute_through_worker(conn, [mine, other])
    await conn.execute(  # their trends start before the promotion below
        "UPDATE metrics_events SET created_at = now() - interval '10 days'"
        " WHERE tenant_id = ANY (%s)",
        ([mine, other],),
    )
    await conn.execute(
        "DELETE FROM aiv_raw_signals WHERE date < current_date - 1 AND dealer_id = ANY (%s)",
        ([mine, other],),
    )
    for tenant in (mine, other):  # both risks rise: one alert each, at its own time
        await recompute_through_worker(conn, [tenant])
    await conn.execute(
        "INSERT INTO alerts (tenant_id, kind, dedup_key, data, created_at)"
        " VALUES (%s, 'stale_data', 'old', '{\"current\": {\"daysSinceLastData\": 9}}',"
        " now() - interval '40 days')",
        (mine,),
    )
    await promote_a_model_three_days_ago(conn)
    feed = await api.client.get("/api/alerts", params={"tenantId": str(mine)}, headers=api.admin)
    [raised] = [a for a in feed.json()["alerts"] if a["kind"] == "risk_level_up"]

    # The tenant's own token (Row Level Security) and an admin's (any tenant) alike.
    for headers in (api.bearer(tenant=mine), api.admin):
        response = await api.client.get(
            "/api/aoer/history", params={"tenantId": str(mine)}, headers=headers
        )
        assert response.status_code == 200, response.text
        markers = response.json()["markers"]
        assert [m["kind"] for m in markers] == ["model", "alert"]  # oldest first
        alert = markers[1]
        assert alert["at"] == raised["createdAt"]
        assert alert["label"] == "Visibility risk rose"  # the feed's title
        assert re.fullmatch(
            r"Visibility risk rose: risk \d\.\d\d \(Low\) → \d\.\d\d \(High\)", alert["detail"]
        ), alert["detail"]
    longer = await api.client.get(
        "/api/aoer/history", params={"tenantId": str(mine), "days": 60}, headers=api.admin
    )
    assert [(m["kind"], m["label"]) for m in longer.json()["markers"]] == [
        ("alert", "No recent data"),
        ("model", "v2 promoted"),
        ("alert", "Visibility risk rose"),
    ]
    assert longer.json()["markers"][0]["detail"] == "No recent data: 9 days since the last data"
    # The other tenant sees its own alert only, and not the first tenant's history at all.
    theirs = await api.client.get(
        "/api/aoer/history",
        params={"tenantId": str(other), "days": 60},
        headers=api.bearer(tenant=other),
    )
    [their_alert] = (
        await api.client.get("/api/alerts", params={"tenantId": str(other)}, headers=api.admin)
    ).json()["alerts"]
    assert their_alert["createdAt"] != raised["createdAt"]
    assert [(m["kind"], m["at"]) for m in theirs.json()["markers"]][1:] == [
        ("alert", their_alert["createdAt"])
    ]
    refused = await api.client.get(
        "/api/aoer/history", params={"tenantId": str(mine)}, headers=api.bearer(tenant=other)
    )
    assert refused.status_code in (403, 404)
    # A dealership first scored after the promotion never had the model it replaced: no
    # "v2 promoted — every score was recomputed" on its chart.
    newcomer = await make_tenant("New Motors")
    await add_signals(newcomer, STEADY)
    await recompute_through_worker(conn, [newcomer])
    fresh = await api.client.get(
        "/api/aoer/history", params={"tenantId": str(newcomer)}, headers=api.admin
    )
    assert fresh.json()["markers"] == []
    # A dealership scored before it is marked even when the window starts after its first
    # point (review: the window's first point decided, so a short window lost the marker).
    short = await api.client.get(
        "/api/aoer/history", params={"tenantId": str(mine), "days": 2}, headers=api.admin
    )
    assert [m["label"] for m in short.json()["markers"] if m["kind"] == "model"] == []
    recent = await api.client.get(
        "/api/aoer/history", params={"tenantId": str(mine), "days": 4}, headers=api.admin
    )
    assert [m["label"] for m in recent.json()["markers"] if m["kind"] == "model"] == ["v2 promoted"]


async def test_the_feed_pages_through_every_alert_of_a_burst(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    """A promotion re-queuing a large organisation raises hundreds of alerts in one batch,
    with one created_at: past the newest page, `before` reaches every one, each once."""
    tenant = await make_tenant()
    await conn.execute(
        "INSERT INTO alerts (tenant_id, kind, dedup_key, data, created_at)"
        " SELECT %s, 'grade_down', 'burst:' || i, '{}', now() FROM generate_series(1, 600) i",
        (tenant,),
    )
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 250}
    for _ in range(4):
        page = await api.client.get("/api/alerts", params=params, headers=api.admin)
        assert page.status_code == 200, page.text
        seen += [a["id"] for a in page.json()["alerts"]]
        if page.json()["nextBefore"] is None:
            break
        params["before"] = page.json()["nextBefore"]
    assert len(seen) == len(set(seen)) == 600
    # A full last page says it is the last: no request for an empty one.
    first = (await api.client.get("/api/alerts", params={"limit": 300}, headers=api.admin)).json()
    after = {"limit": 300, "before": first["nextBefore"]}
    last = (await api.client.get("/api/alerts", params=after, headers=api.admin)).json()
    assert (len(last["alerts"]), last["nextBefore"]) == (300, None)
    bad = await api.client.get("/api/alerts", params={"before": "nope"}, headers=api.admin)
    assert bad.status_code == 422, bad.text  # as /api/jobs answers a cursor not its own
    assert "malformed cursor" in bad.json()["error"]


async def test_a_tenants_rules_made_in_its_organisation_leave_with_it(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """After a move the organisation the dealership left hears nothing more of it: the rules
    made for it there (with that organisation's endpoints and addresses) are deleted with the
    move, audited under it, while an administrator's rule made outside any organisation
    stays; and an organisation's endpoint never hears of another organisation's dealership."""
    old, new = await new_org(conn, "Old Group"), await new_org(conn, "New Group")
    loose = await make_tenant("Loose Motors")  # in no organisation yet
    await add_signals(loose, STEADY)
    admins = await post(api, "/api/alerts/rules", {"kind": "grade_down", "tenantId": str(loose)})
    assert admins.status_code == 201, admins.text
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (old, loose))
    act_as_org(api, old)  # the old organisation makes its own endpoint and rule
    endpoint = (await post(api, "/api/alerts/endpoints", {"url": "https://old.example/h"})).json()
    assert endpoint["orgId"] == str(old)
    theirs = await post(
        api,
        "/api/alerts/rules",
        {
            "kind": "grade_down",
            "tenantId": str(loose),
            "endpointIds": [endpoint["id"]],
            "emails": ["ops@old.example"],
        },
    )
    assert theirs.status_code == 201, theirs.text
    # A rule naming the old organisation's endpoint, as no API call could make it now.
    await conn.execute(
        "INSERT INTO alert_rules (scope, tenant_id, kind, endpoint_ids, created_by, owner_org)"
        " VALUES ('tenant', %s, 'risk_level_up', %s, 't', %s)",
        (loose, [UUID(endpoint["id"])], new),
    )

    moved = await api.client.patch(
        f"/api/tenants/{loose}", json={"orgId": str(new)}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text
    cur = await conn.execute("SELECT id::text AS id, kind FROM alert_rules ORDER BY kind")
    left = [(r["id"], r["kind"]) for r in await cur.fetchall()]
    assert left[0] == (admins.json()["id"], "grade_down")
    assert [kind for _, kind in left] == ["grade_down", "risk_level_up"]
    cur = await conn.execute(
        "SELECT org_id, details ->> 'reason' AS reason FROM audit_log"
        " WHERE action = 'alert_rule.delete' AND target = %s",
        (theirs.json()["id"],),
    )
    assert [tuple(r.values()) for r in await cur.fetchall()] == [
        (old, "the tenant left the organisation that made the rule")
    ]

    await recompute_through_worker(conn, [loose])  # the first: nothing to compare
    await conn.execute(  # two data points: Excellent -> Poor, Low -> High
        "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1", (loose,)
    )
    await conn.execute("UPDATE aiv_raw_signals SET aeo = 10, geo = 10, ugc = 10")
    await recompute_through_worker(conn, [loose])
    cur = await conn.execute(
        "SELECT a.kind, d.endpoint_id, d.email FROM alerts a"
        " LEFT JOIN alert_deliveries d ON d.alert_id = a.id ORDER BY a.kind"
    )
    assert [tuple(r.values()) for r in await cur.fetchall()] == [
        ("grade_down", None, None),  # the administrator's rule: on the feed, sent nowhere
        ("risk_level_up", None, None),  # not to the old organisation's endpoint
    ]


async def test_alerts_stay_with_the_organisation_whose_rule_raised_them(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """After a move the organisation the dealership went to does not read the alerts its old
    organisation's rules raised (their rule, that organisation's endpoint and its receiver's
    errors), nor does the dealership's own key; the old organisation keeps them, with the
    deliveries still retrying to its endpoint. An administrator's alerts go with the
    dealership, as the administrator's rule does."""
    old, new = await new_org(conn, "Old Group"), await new_org(conn, "New Group")
    tenant = await tenant_in(conn, make_tenant, old, "Moving Motors")
    await add_signals(tenant, STEADY)
    admins = await post(
        api,
        "/api/alerts/rules",
        {"kind": "grade_down", "tenantId": str(tenant), "emails": ["admin@hq.example"]},
    )
    assert admins.status_code == 201, admins.text
    act_as_org(api, old)
    endpoint = (await post(api, "/api/alerts/endpoints", {"url": "https://old.example/h"})).json()
    theirs = await post(
        api,
        "/api/alerts/rules",
        {"kind": "risk_level_up", "tenantId": str(tenant), "endpointIds": [endpoint["id"]]},
    )
    assert theirs.status_code == 201, theirs.text
    await recompute_through_worker(conn, [tenant])
    await conn.execute(  # Excellent -> Poor, Low -> High
        "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1", (tenant,)
    )
    await conn.execute("UPDATE aiv_raw_signals SET aeo = 10, geo = 10, ugc = 10")
    await recompute_through_worker(conn, [tenant])
    await conn.execute(
        "UPDATE alert_deliveries SET attempts = 1, last_error = 'HTTP 500 from old.example'"
        " WHERE endpoint_id IS NOT NULL"
    )
    api.app.dependency_overrides.clear()
    moved = await api.client.patch(
        f"/api/tenants/{tenant}", json={"orgId": str(new)}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text

    async def feed(headers: dict[str, str] | None = None, **params: str) -> list[Any]:
        got = await api.client.get("/api/alerts", params=params, headers=headers)
        assert got.status_code == 200, got.text
        return [(a["kind"], [d.get("endpointId") or d["email"] for d in a["deliveries"]])
                for a in got.json()["alerts"]]  # fmt: skip

    admin_alert = ("grade_down", ["admin@hq.example"])
    old_alert = ("risk_level_up", [endpoint["id"]])
    assert sorted(await feed(api.admin)) == [admin_alert, old_alert]
    assert await feed(api.admin, orgId=str(new)) == [admin_alert]
    assert await feed(api.admin, orgId=str(old)) == [old_alert]
    assert await feed(api.bearer(tenant=tenant)) == [admin_alert]
    act_as_org(api, new)
    assert await feed() == [admin_alert]
    assert await feed(tenantId=str(tenant)) == [admin_alert]
    act_as_org(api, old)
    assert await feed() == [old_alert]
    as_new = OrgPrincipal("org:t", "org", None, datetime.max.replace(tzinfo=UTC), org=new)
    async with api.ctx.session(as_new) as session:  # the deliveries table itself, under RLS
        cur = await session.conn.execute("SELECT email, last_error FROM alert_deliveries")
        assert [tuple(r.values()) for r in await cur.fetchall()] == [("admin@hq.example", None)]
    api.app.dependency_overrides.clear()
    page = await api.client.get("/dashboard/alerts", headers=api.bearer("org", org_id=old))
    assert page.status_code == 200
    row = re.search(r'<table id="recent-alerts">.*?</table>', page.text, re.S)
    assert row is not None
    assert "Moving Motors <small" in row.group()
    assert "(no longer in your organisation)" in row.group()
    assert f"/dashboard/tenant/{tenant}" not in row.group()  # a page it can no longer open
    page = await api.client.get("/dashboard/alerts", headers=api.bearer("org", org_id=new))
    assert f'<a href="/dashboard/tenant/{tenant}">Moving Motors</a>' in page.text
    assert "no longer in your organisation" not in page.text


async def test_an_organisation_removes_its_own_endpoint_with_its_pending_deliveries(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """Every removal of an organisation's own endpoint answered 500, "permission denied for
    table alert_deliveries": its pending deliveries must end first, and a scoped caller may
    only read deliveries."""
    mine, theirs = await new_org(conn, "Mine"), await new_org(conn, "Theirs")
    tenant = await tenant_in(conn, make_tenant, mine, "Endpoint Motors")
    await add_signals(tenant, STEADY)
    act_as_org(api, theirs)
    foreign = (await post(api, "/api/alerts/endpoints", {"url": "https://theirs.example/h"})).json()
    act_as_org(api, mine)
    endpoint = (await post(api, "/api/alerts/endpoints", {"url": "https://mine.example/h"})).json()
    rule = await post(
        api,
        "/api/alerts/rules",
        {"kind": "risk_level_up", "tenantId": str(tenant), "endpointIds": [endpoint["id"]]},
    )
    assert rule.status_code == 201, rule.text
    await recompute_through_worker(conn, [tenant])
    await conn.execute(
        "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1", (tenant,)
    )
    await recompute_through_worker(conn, [tenant])  # Low -> High: one pending delivery
    assert await count(conn, "alert_deliveries WHERE status = 'pending'") == 1

    other = await api.client.delete(f"/api/alerts/endpoints/{foreign['id']}")
    assert other.status_code == 404, other.text  # not its own: unknown to it
    removed = await api.client.delete(f"/api/alerts/endpoints/{endpoint['id']}")
    assert removed.status_code == 204, removed.text
    cur = await conn.execute("SELECT status, last_error FROM alert_deliveries")
    assert [tuple(r.values()) for r in await cur.fetchall()] == [("failed", "endpoint deleted")]
    cur = await conn.execute("SELECT endpoint_ids FROM alert_rules")
    assert [r["endpoint_ids"] for r in await cur.fetchall()] == [[]]
    cur = await conn.execute("SELECT id::text AS id FROM alert_endpoints")
    assert [r["id"] for r in await cur.fetchall()] == [foreign["id"]]
    # The owner's function behind it refuses another organisation's endpoint, called directly.
    await conn.execute("BEGIN")
    await conn.execute(
        "SELECT set_config('role', 'aoer_tenant', true),"
        " set_config('request.jwt.claims', %s, true)",
        (f'{{"role": "org", "org_id": "{mine}"}}',),
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="is not yours"):
        await conn.execute("SELECT aoer_detach_endpoint(%s)", (foreign["id"],))
    await conn.execute("ROLLBACK")


async def test_a_rule_made_with_an_api_key_names_the_key_on_the_page(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    """The page said a rule was made 'by key:16def3f8-…', an id its readers cannot place."""
    org = await new_org(conn, "Key Group")
    tenant = await tenant_in(conn, make_tenant, org, "Keyed Motors")
    made = await api.client.post(
        "/api/keys",
        json={"scope": "org", "orgId": str(org), "name": "analyst <laptop>"},
        headers=api.admin,
    )
    assert made.status_code == 201, made.text
    key = made.json()
    rule = await api.client.post(
        "/api/alerts/rules",
        json={"kind": "grade_down", "tenantId": str(tenant)},
        headers={"Authorization": f"Bearer {key['key']}"},
    )
    assert rule.status_code == 201, rule.text
    assert rule.json()["createdBy"] == f"key:{key['id']}"
    page = await api.client.get("/dashboard/alerts", headers=api.admin)
    assert 'by <span title="key:' in page.text
    assert "key “analyst &lt;laptop&gt;”" in page.text
    # An administrator's rule on its dealership: the organisation reads that an
    # administrator made it, never the operator's account.
    admins = await post(api, "/api/alerts/rules", {"kind": "stale_data", "tenantId": str(tenant)})
    assert admins.json()["createdBy"] != "administrator"
    as_org = api.bearer("org", org_id=org)
    theirs = (await api.client.get("/api/alerts/rules", headers=as_org)).json()["rules"]
    makers = {r["kind"]: r["createdBy"] for r in theirs}
    assert makers == {"grade_down": f"key:{key['id']}", "stale_data": "administrator"}
    org_page = await api.client.get("/dashboard/alerts", headers=as_org)
    assert "by an administrator</td>" in org_page.text
    assert f"by {admins.json()['createdBy']}" not in org_page.text


async def test_the_alerts_page_says_where_each_delivery_goes_and_why_it_waits(
    api: Api, conn: Connection, make_tenant: MakeTenant, db_url: str, tmp_path: Path
) -> None:
    """The feed read 'webhook: pending x3': not which endpoint, nor what failed (that only in
    a tooltip, as `ConnectError: [Errno 111] Connection refused`)."""
    tenant = await make_tenant("Delivery Motors")
    endpoint = (
        await post(api, "/api/alerts/endpoints", {"url": "https://hooks.example.com/x"})
    ).json()
    cur = await conn.execute(
        "INSERT INTO alerts (tenant_id, kind, dedup_key, data) VALUES (%s, 'grade_down', 'k', '{}')"
        " RETURNING id",
        (tenant,),
    )
    alert = (await cur.fetchone() or {})["id"]
    await conn.execute(
        "INSERT INTO alert_deliveries (alert_id, tenant_id, endpoint_id, email, status, attempts,"
        " last_error) VALUES (%s, %s, %s, NULL, 'pending', 3,"
        " 'ConnectError: [Errno 111] Connection refused'),"
        " (%s, %s, NULL, 'gm@delivery.example', 'delivered', 1, NULL)",
        (alert, tenant, endpoint["id"], alert, tenant),
    )
    page = await api.client.get("/dashboard/alerts", headers=api.admin)
    row = re.search(r'<table id="recent-alerts">.*?</table>', page.text, re.S)
    assert row is not None
    text = re.sub(r"<[^>]+>", "", row.group())
    assert "webhook hooks.example.com: pending after 3 attempts (could not connect)" in text
    assert "gm@delivery.example: delivered after 1 attempt" in text
    listed = run_aoer(db_url, tmp_path, "alerts", "list", COLUMNS="250")
    assert listed.returncode == 0, listed.stderr
    flat = " ".join(listed.stdout.split())
    assert "webhook hooks.example.com: pending after 3 attempts (could not connect)" in flat
    assert "gm@delivery.example: delivered after 1 attempt" in flat
