"""The DESIGN §6 endpoints with their paths and camelCase JSON, on a real PostgreSQL."""

import asyncio
import gc
from datetime import timedelta
from uuid import uuid4

import psycopg
import pytest

from aoer import queue
from aoer.db.pool import Connection, connect
from tests.api.conftest import CRON_SECRET, Api, ApiFactory, count, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant, session_of, utc_today

STEADY = [{"days_ago": d, "aeo": "60.00", "geo": "50.00", "ugc": "40.00"} for d in range(6)]


async def test_queue_answers_202_and_reports_coalescing(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    first = await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(tenant)}, headers=api.admin
    )
    assert first.status_code == 202
    body = first.json()
    assert set(body) == {"success", "jobId", "tenantId", "priority", "status", "coalesced"}
    assert (body["success"], body["tenantId"], body["priority"], body["status"]) == (
        True,
        str(tenant),
        "medium",
        "queued",
    )
    assert body["coalesced"] is False
    second = await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(tenant), "priority": "urgent"}, headers=api.admin
    )
    assert second.status_code == 202
    assert second.json()["coalesced"] is True
    assert second.json()["jobId"] == body["jobId"]
    assert second.json()["priority"] == "urgent"
    assert await count(conn, "aoer_queue") == 1


async def test_concurrent_admin_enqueues_share_statements_and_each_gets_its_job(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant() for _ in range(20)]
    before = api.ctx.enqueuer.statements
    responses = await asyncio.gather(
        *(
            api.client.post("/api/aoer/queue", json={"tenantId": str(t)}, headers=api.admin)
            for t in [*tenants, tenants[0]]
        ),
        api.client.post("/api/aoer/queue", json={"tenantId": str(uuid4())}, headers=api.admin),
    )
    *queued, again, unknown = responses
    assert [r.status_code for r in queued] == [202] * 20
    assert [r.json()["tenantId"] for r in queued] == [str(t) for t in tenants]
    cur = await conn.execute("SELECT tenant_id, id FROM aoer_queue WHERE status = 'queued'")
    jobs = {str(row["tenant_id"]): str(row["id"]) for row in await cur.fetchall()}
    assert {r.json()["tenantId"]: r.json()["jobId"] for r in queued} == jobs
    assert (again.status_code, again.json()["jobId"]) == (202, jobs[str(tenants[0])])
    assert again.json()["coalesced"] is True
    assert unknown.status_code == 404
    assert "unknown tenant" in unknown.json()["error"]
    # Fewer statements than requests: those that arrived together shared one.
    assert api.ctx.enqueuer.statements - before < len(responses)


async def test_queue_status_counts_jobs_with_queued_as_pending(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, STEADY)
    await recompute_through_worker(conn, [tenant])
    await api.client.post("/api/aoer/queue", json={"tenantId": str(tenant)}, headers=api.admin)
    response = await api.client.get(
        "/api/aoer/queue", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert response.status_code == 200
    assert response.json() == {
        "tenantId": str(tenant),
        "queueStatus": {"pending": 1, "processing": 0, "completed": 1, "failed": 0},
    }


async def test_summary_has_grade_and_risk_level(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, STEADY)
    await recompute_through_worker(conn, [tenant])
    response = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.bearer(tenant=tenant)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {
        "tenantId",
        "aoerScore",
        "visibilityRisk",
        "grade",
        "riskLevel",
        "lastUpdated",
        "metrics",
        "change",
        "change7d",
        "change30d",
        "lastMove",
        "recommendations",
    }
    # The document names the fields as the body does (it said change7D and change30D, and a
    # client generated from it dropped them).
    document = (await api.client.get("/openapi.json")).json()
    assert set(document["components"]["schemas"]["SummaryOut"]["properties"]) == set(body)
    # 60*0.40 + 50*0.35 + 40*0.25 = 51.50, no volatility; 6 fresh days → risk 0.20
    assert (body["aoerScore"], body["visibilityRisk"]) == (51.5, 0.2)
    assert (body["grade"], body["riskLevel"]) == ("Fair", "Low")
    assert body["metrics"]["dataPoints"] == 6
    assert body["metrics"]["avgAEO"] == 60


async def test_summary_404_distinguishes_never_computed_from_unknown(
    api: Api, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    never = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert never.status_code == 404
    assert "never computed" in never.json()["error"]
    unknown = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(uuid4())}, headers=api.admin
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("unknown tenant")


async def test_cron_queues_every_active_tenant_at_low_priority(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    active = [await make_tenant(f"t{i}") for i in range(3)]
    await make_tenant("closed", active=False)
    response = await api.client.get(
        "/api/aoer/cron", headers={"Authorization": f"Bearer {CRON_SECRET}"}
    )
    assert response.status_code == 200
    assert response.json() == {"success": True, "queued": 3}
    cur = await conn.execute("SELECT tenant_id, priority FROM aoer_queue WHERE status = 'queued'")
    assert {(r["tenant_id"], r["priority"]) for r in await cur.fetchall()} == {
        (t, "low") for t in active
    }


async def test_history_lists_one_point_per_recompute_within_the_days(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, STEADY)
    await recompute_through_worker(conn, [tenant])
    await add_signals(tenant, [{"days_ago": 7, "aeo": "90.00", "geo": "90", "ugc": "90"}])
    await recompute_through_worker(conn, [tenant])
    await conn.execute(
        "INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)"
        " VALUES (%s, 'aoer_recompute', '{\"aoerScore\": 1, \"visibilityRisk\": 1}',"
        " now() - interval '40 days')",
        (tenant,),
    )
    response = await api.client.get(
        "/api/aoer/history", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["tenantId"], body["days"]) == (str(tenant), 30)
    scores = [p["aoerScore"] for p in body["history"]]
    assert len(scores) == 2
    assert scores[0] == 51.5
    assert scores[1] != 51.5
    assert body["history"][0]["grade"] == "Fair"
    assert body["history"][0]["metrics"]["dataPoints"] == 6
    longer = await api.client.get(
        "/api/aoer/history", params={"tenantId": str(tenant), "days": 60}, headers=api.admin
    )
    assert len(longer.json()["history"]) == 3


async def test_signals_upsert_is_idempotent_and_queues_the_tenants(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("A"), await make_tenant("B")
    today = utc_today()
    rows = [
        {"dealerId": str(t), "date": str(today - timedelta(d)), "aeo": 50 + d, "geo": "40.5"}
        for t in (a, b)
        for d in range(3)
    ]
    first = await api.client.post("/api/signals", json={"signals": rows}, headers=api.admin)
    assert first.status_code == 200, first.text
    assert first.json() == {"upserted": 6, "tenants": 2, "queued": 2}
    rows[0]["aeo"] = 99
    again = await api.client.post(
        "/api/signals", json={"signals": rows, "enqueue": False}, headers=api.bearer("service")
    )
    assert again.json() == {"upserted": 6, "tenants": 2, "queued": 0}
    assert await count(conn, "aiv_raw_signals") == 6
    cur = await conn.execute(
        "SELECT aeo FROM aiv_raw_signals WHERE dealer_id = %s AND date = %s", (a, today)
    )
    assert [r["aeo"] for r in await cur.fetchall()] == [99]
    assert await count(conn, "aoer_queue") == 2


async def test_tenant_sends_its_own_signals(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    rows = [{"dealerId": str(tenant), "date": str(utc_today()), "aeo": 10}]
    response = await api.client.post(
        "/api/signals", json={"signals": rows}, headers=api.bearer(tenant=tenant)
    )
    assert response.json() == {"upserted": 1, "tenants": 1, "queued": 1}


async def test_register_and_list_tenants(api: Api) -> None:
    chosen = uuid4()
    created = await api.client.post(
        "/api/tenants",
        json={"name": "  Harbor Motors ", "id": str(chosen), "city": "Baltimore"},
        headers=api.admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] == str(chosen)
    assert body["name"] == "Harbor Motors"
    assert (body["city"], body["active"], body["domain"]) == ("Baltimore", True, None)
    assert {"createdAt", "updatedAt"} <= set(body)
    duplicate = await api.client.post(
        "/api/tenants", json={"name": "Again", "id": str(chosen)}, headers=api.admin
    )
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.json()["error"]
    listed = await api.client.get("/api/tenants", headers=api.admin)
    assert [t["id"] for t in listed.json()["tenants"]] == [str(chosen)]


async def test_a_taken_name_is_refused_ignoring_case_and_blanks(api: Api, conn: Connection) -> None:
    first = await api.client.post("/api/tenants", json={"name": "Summit Ford"}, headers=api.admin)
    assert first.status_code == 201, first.text
    for name in ("Summit Ford", "  summit FORD "):
        again = await api.client.post("/api/tenants", json={"name": name}, headers=api.admin)
        assert again.status_code == 409
        error = again.json()["error"]
        assert f"a tenant named {name.strip()!r} already exists" in error
        assert first.json()["id"] in error
    with pytest.raises(psycopg.errors.UniqueViolation):  # the database holds the rule too
        await conn.execute("INSERT INTO tenants (name) VALUES ('SUMMIT FORD ')")
    await conn.rollback()
    listed = await api.client.get("/api/tenants", headers=api.admin)
    assert [t["name"] for t in listed.json()["tenants"]] == ["Summit Ford"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("example.com", "example.com"),
        ("www.dealer-one.co.uk", "www.dealer-one.co.uk"),
        (" WWW.Dealer-One.CO.UK. ", "www.dealer-one.co.uk"),
        ("https://x.com", "x.com"),  # a site's URL: its host is the domain
        ("http://Shop.Example.com/", "shop.example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
    ],
)
async def test_a_domain_is_stored_as_a_lower_case_host_name(
    api: Api, given: str, stored: str
) -> None:
    body = {"name": f"Dealer {stored}", "domain": given}
    created = await api.client.post("/api/tenants", json=body, headers=api.admin)
    assert created.status_code == 201, created.text
    assert created.json()["domain"] == stored


async def test_health_and_readiness(api: Api, owner_db_url: str) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "migrations": "current"}
    owner = await connect(owner_db_url)  # the app role may not write the migrations table
    await owner.execute("DELETE FROM aoer_schema_migrations WHERE version = 2")
    await owner.close()
    behind = await api.client.get("/readyz")
    assert behind.status_code == 503
    assert behind.json()["migrations"] == "pending"
    assert behind.json()["pendingMigrations"] == ["0002_row_level_security"]
    assert "aoer migrate" in behind.json()["error"]


async def test_metrics_expose_queue_depth_http_traffic_and_batches(
    make_api: ApiFactory, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    api = await make_api(AOER_METRICS_REFRESH_SECONDS=0)  # each scrape reads afresh
    tenant = await make_tenant()
    await add_signals(tenant, STEADY)
    await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(tenant), "priority": "high"}, headers=api.admin
    )
    text = (await api.client.get("/metrics")).text
    assert 'aoer_queue_jobs{priority="high",status="queued"} 1.0' in text
    assert (
        'aoer_http_requests_total{method="POST",route="/api/aoer/queue",status="202"} 1.0' in text
    )
    assert "aoer_http_request_duration_seconds_bucket" in text
    assert "aoer_database_up 1.0" in text
    # The worker half (`aoer up` wires the hook): one batch of one job.
    jobs = await session_of(conn, lease_s=30).jobs.claim("w", 10)
    api.ctx.metrics.observe_batch(await queue.process_batch(session_of(conn), "w", jobs))
    text = (await api.client.get("/metrics")).text
    assert 'aoer_jobs_total{outcome="completed"} 1.0' in text
    assert "aoer_recompute_batch_size_count 1.0" in text
    assert "aoer_recompute_batch_duration_seconds_count 1.0" in text
    assert "aoer_job_latency_seconds_count 1.0" in text
    assert 'aoer_queue_jobs{priority="high",status="completed"} 1.0' in text


async def test_unknown_routes_and_methods_answer_in_the_error_shape(api: Api) -> None:
    missing = await api.client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert set(missing.json()) == {"error"}
    wrong = await api.client.delete("/api/aoer/queue", headers=api.admin)
    assert wrong.status_code == 405
    assert set(wrong.json()) == {"error"}


async def test_openapi_documents_every_endpoint_and_no_fastapi_default_errors(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    paths = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    expected = {
        ("POST", "/api/aoer/queue"),
        ("GET", "/api/aoer/queue"),
        ("GET", "/api/aoer/summary"),
        ("GET", "/api/aoer/cron"),
        ("GET", "/api/aoer/history"),
        ("GET", "/api/aoer/stream"),
        ("POST", "/api/signals"),
        ("GET", "/api/tenants"),
        ("POST", "/api/tenants"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/login"),
    }
    assert expected <= paths
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    summary = doc["paths"]["/api/aoer/summary"]["get"]["responses"]
    assert {"200", "401", "403", "404", "422", "503"} <= set(summary)
    queue_post = doc["paths"]["/api/aoer/queue"]["post"]["responses"]
    assert {"202", "401", "403", "404", "409", "413", "415", "422"} <= set(queue_post)
    assert {"HTTPBearer", "APIKeyCookie"} <= set(doc["components"]["securitySchemes"])


async def test_a_started_server_freezes_its_start_up_heap(make_api: ApiFactory) -> None:
    # Full collections under load walked every start-up object and stopped the event loop
    # for ~50 ms each (the API's p99 tail); frozen, they take ~1.5 ms.
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    api = await make_api(live=True)
    assert api.server is not None
    assert gc.get_freeze_count() > 10_000, "the app, its routes and modules are frozen"
