"""The old system's four SQL functions (DESIGN §17, migration 0013): what the workers compute,
store and enqueue, limited by Row Level Security under a tenant's or an organisation's claims."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from aoer import queue
from aoer.constants import QUEUE_CHANNEL, SUMMARY_CHANNEL
from aoer.db.pool import Connection, connect
from tests.conftest import AddSignals, MakeTenant, session_of
from tests.integration.test_golden_scores import CASES, _exact

WORKER = "test-worker"
FIVE_DAYS = [{"days_ago": d, "aeo": "60", "geo": "70", "ugc": "80"} for d in range(5)]


async def rows(conn: Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    return list(await cur.fetchall())


@asynccontextmanager
async def claims(conn: Connection, **claim: str) -> AsyncIterator[None]:
    """A transaction as a scoped request runs it: role aoer_tenant with these JWT claims."""
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('role', 'aoer_tenant', true),"
            " set_config('request.jwt.claims', %s, true)",
            (json.dumps(claim),),
        )
        yield


async def test_golden_cases_hold_through_compute_aoer_for_tenant(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    for case in CASES:
        tenant = await make_tenant(case["name"], tenant_id=UUID(case["tenant_id"]))
        await add_signals(tenant, case["signals"])
    for case in CASES:
        [got] = await rows(conn, "SELECT * FROM compute_aoer_for_tenant(%s)", case["tenant_id"])
        expected = case["expected"]
        assert got["tenant_id"] == UUID(case["tenant_id"])
        assert got["aoer_score"] == Decimal(expected["aoer_score"]), case["name"]
        assert got["visibility_risk"] == Decimal(expected["visibility_risk"]), case["name"]
        for key, value in expected["metrics"].items():
            assert _exact(got["metrics"][key]) == _exact(value), (case["name"], key)


async def test_result_shapes_are_the_old_ones(conn: Connection) -> None:
    [compute] = await rows(
        conn, "SELECT pg_get_function_result('compute_aoer_for_tenant(uuid)'::regprocedure) AS r"
    )
    assert compute["r"] == (
        "TABLE(tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb)"
    )
    [status] = await rows(
        conn, "SELECT pg_get_function_result('get_aoer_queue_status()'::regprocedure) AS r"
    )
    assert status["r"] == (
        "TABLE(status character varying, priority character varying, job_count bigint,"
        " oldest_job timestamp with time zone, newest_job timestamp with time zone)"
    )
    [enqueue] = await rows(
        conn,
        "SELECT pg_get_function_arguments('queue_tenant_recompute(uuid, varchar)'::regprocedure)"
        " AS a, pg_get_function_result('queue_tenant_recompute(uuid, varchar)'::regprocedure)"
        " AS r",
    )
    assert enqueue == {
        "a": "tenant_uuid uuid, priority_level character varying"
        " DEFAULT 'medium'::character varying",
        "r": "uuid",
    }
    [secdef] = await rows(
        conn,
        "SELECT array_agg(proname ORDER BY proname) AS names FROM pg_proc WHERE prosecdef"
        " AND proname IN ('compute_aoer_for_tenant', 'update_aoer_summary',"
        " 'queue_tenant_recompute', 'get_aoer_queue_status')",
    )
    assert secdef["names"] is None  # all four run with the caller's rights


async def test_update_aoer_summary_stores_what_a_worker_stores(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    by_function, by_worker = await make_tenant("A"), await make_tenant("B")
    for tenant in (by_function, by_worker):
        await add_signals(tenant, FIVE_DAYS)
    [computed] = await rows(conn, "SELECT * FROM compute_aoer_for_tenant(%s)", by_function)
    assert (await rows(conn, "SELECT update_aoer_summary(%s) AS ok", by_function)) == [{"ok": True}]
    await queue.enqueue(session_of(conn), by_worker)
    jobs = await session_of(conn).jobs.claim(WORKER, 10)
    await queue.process_batch(session_of(conn), WORKER, jobs)

    summaries = {
        r["tenant_id"]: r
        for r in await rows(
            conn, "SELECT tenant_id, aoer_score, visibility_risk, metrics FROM aoer_summary"
        )
    }
    assert summaries[by_function]["aoer_score"] == computed["aoer_score"] == Decimal("68.50")
    assert summaries[by_function]["visibility_risk"] == computed["visibility_risk"]
    assert summaries[by_function]["metrics"] == computed["metrics"]
    assert {k: v for k, v in summaries[by_worker].items() if k != "tenant_id"} == {
        k: v for k, v in summaries[by_function].items() if k != "tenant_id"
    }
    events = {
        r["tenant_id"]: r
        for r in await rows(conn, "SELECT tenant_id, event_type, event_data FROM metrics_events")
    }
    mine, theirs = events[by_function], events[by_worker]
    assert mine["event_type"] == theirs["event_type"] == "aoer_recompute"
    assert set(theirs["event_data"]) <= set(mine["event_data"])
    for key in ("aoerScore", "visibilityRisk", "metrics"):
        assert mine["event_data"][key] == theirs["event_data"][key], key
    assert mine["event_data"]["source"] == "update_aoer_summary"


async def test_update_aoer_summary_announces_the_new_summary(
    conn: Connection, db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, FIVE_DAYS)
    listener = await connect(db_url)
    try:
        await listener.execute(f"LISTEN {SUMMARY_CHANNEL}")
        await conn.execute("SELECT update_aoer_summary(%s)", (tenant,))
        notice = await asyncio.wait_for(anext(listener.notifies()), 10)
    finally:
        await listener.close()
    assert notice.payload == str(tenant)


async def test_update_aoer_summary_error_answers_false_with_a_failure_row(
    owner_db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    owner = await connect(owner_db_url)
    try:
        cur = await owner.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id")
        tenant = (await cur.fetchone() or {})["id"]
        await owner.execute(
            "INSERT INTO aiv_raw_signals (dealer_id, date, aeo) VALUES (%s, current_date, 50)",
            (tenant,),
        )
        # A rule the store cannot meet, so the upsert fails inside the function.
        await owner.execute(
            "ALTER TABLE aoer_summary ADD CONSTRAINT no_scores CHECK (aoer_score < 0) NOT VALID"
        )
        assert await rows(owner, "SELECT update_aoer_summary(%s) AS ok", tenant) == [{"ok": False}]
        assert await rows(owner, "SELECT count(*) AS n FROM aoer_summary") == [{"n": 0}]
        assert await rows(owner, "SELECT count(*) AS n FROM metrics_events") == [{"n": 0}]
        [failure] = await rows(
            owner, "SELECT tenant_id, error_message, error_data FROM aoer_failures"
        )
    finally:
        await owner.close()
    assert failure["tenant_id"] == tenant
    assert "no_scores" in failure["error_message"]
    assert failure["error_data"]["source"] == "update_aoer_summary"


async def test_update_aoer_summary_of_an_unknown_tenant_is_an_error(conn: Connection) -> None:
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown tenant"):
        await conn.execute("SELECT update_aoer_summary(%s)", (uuid4(),))


async def test_queue_tenant_recompute_coalesces_and_wakes_the_workers(
    conn: Connection, db_url: str, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    listener = await connect(db_url)
    try:
        await listener.execute(f"LISTEN {QUEUE_CHANNEL}")
        [first] = await rows(conn, "SELECT queue_tenant_recompute(%s) AS id", tenant)
        notice = await asyncio.wait_for(anext(listener.notifies()), 10)
    finally:
        await listener.close()
    assert notice.payload == "medium"
    [second] = await rows(conn, "SELECT queue_tenant_recompute(%s, 'urgent') AS id", tenant)
    [third] = await rows(conn, "SELECT queue_tenant_recompute(%s, 'low') AS id", tenant)
    assert first["id"] == second["id"] == third["id"]
    [job] = await rows(conn, "SELECT id, priority, status FROM aoer_queue")
    assert job == {"id": first["id"], "priority": "urgent", "status": "queued"}
    # A job in flight gets a new waiting job beside it (its data may have changed).
    await session_of(conn).jobs.claim(WORKER, 10)
    [fourth] = await rows(conn, "SELECT queue_tenant_recompute(%s) AS id", tenant)
    assert fourth["id"] != first["id"]


@pytest.mark.parametrize(
    ("priority", "error", "message"),
    [
        ("critical", psycopg.errors.InvalidParameterValue, "unknown priority 'critical'"),
        (None, psycopg.errors.InvalidParameterValue, "unknown priority NULL"),
    ],
)
async def test_queue_tenant_recompute_refuses_unknown_priorities(
    conn: Connection, make_tenant: MakeTenant, priority: str | None, error: type, message: str
) -> None:
    tenant = await make_tenant()
    with pytest.raises(error, match=message):
        await conn.execute("SELECT queue_tenant_recompute(%s, %s)", (tenant, priority))
    assert await rows(conn, "SELECT count(*) AS n FROM aoer_queue") == [{"n": 0}]


async def test_queue_tenant_recompute_refuses_unknown_and_inactive_tenants(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    inactive = await make_tenant(active=False)
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown tenant"):
        await conn.execute("SELECT queue_tenant_recompute(%s)", (uuid4(),))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="inactive"):
        await conn.execute("SELECT queue_tenant_recompute(%s)", (inactive,))
    assert await rows(conn, "SELECT count(*) AS n FROM aoer_queue") == [{"n": 0}]


async def test_the_definer_helper_behind_it_checks_everything_itself(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    """aoer_enqueue_as_worker runs as the owner and anyone may call it (as the wrapper's
    callers must): called directly with the tenant's own claims, it still refuses an inactive
    tenant and a bad priority, and writes nothing."""
    inactive = await make_tenant(active=False)
    for priority, error, message in (
        ("low", psycopg.errors.ObjectNotInPrerequisiteState, "inactive"),
        ("bogus", psycopg.errors.InvalidParameterValue, "unknown priority 'bogus'"),
    ):
        with pytest.raises(error, match=message):
            async with claims(conn, role="authenticated", tenant_id=str(inactive)):
                await conn.execute("SELECT aoer_enqueue_as_worker(%s, %s)", (inactive, priority))
    assert await rows(conn, "SELECT count(*) AS n FROM aoer_queue") == [{"n": 0}]


async def test_get_aoer_queue_status_counts_waiting_and_in_flight_jobs(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b, c = await make_tenant("A"), await make_tenant("B"), await make_tenant("C")
    await queue.enqueue(session_of(conn), a, "urgent")
    await session_of(conn).jobs.claim(WORKER, 10)  # a: processing
    await queue.enqueue(session_of(conn), a, "low")
    await queue.enqueue(session_of(conn), b, "low")
    await queue.enqueue(session_of(conn), c, "high")
    got = await rows(conn, "SELECT * FROM get_aoer_queue_status()")
    assert [(r["status"], r["priority"], r["job_count"]) for r in got] == [
        ("queued", "high", 1),
        ("queued", "low", 2),
        ("processing", "urgent", 1),
    ]
    assert all(r["oldest_job"] <= r["newest_job"] for r in got)


async def test_a_tenants_claims_limit_all_four_functions(
    conn: Connection, owner_db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    mine, other = await make_tenant("Mine"), await make_tenant("Other")
    for tenant in (mine, other):
        await add_signals(tenant, FIVE_DAYS)
        await queue.enqueue(session_of(conn), tenant, "high")

    async with claims(conn, role="tenant", tenant_id=str(mine)):
        assert await rows(conn, "SELECT * FROM compute_aoer_for_tenant(%s)", other) == []
        [own] = await rows(conn, "SELECT * FROM compute_aoer_for_tenant(%s)", mine)
        assert own["aoer_score"] == Decimal("68.50")
        status = await rows(conn, "SELECT * FROM get_aoer_queue_status()")
        assert [(r["status"], r["priority"], r["job_count"]) for r in status] == [
            ("queued", "high", 1)
        ]
        [job] = await rows(conn, "SELECT queue_tenant_recompute(%s, 'urgent') AS id", mine)
        assert await rows(conn, "SELECT update_aoer_summary(%s) AS ok", mine) == [{"ok": True}]
    for refused in ("SELECT queue_tenant_recompute(%s)", "SELECT update_aoer_summary(%s)"):
        with pytest.raises(psycopg.errors.NoDataFound, match="unknown tenant"):
            async with claims(conn, role="tenant", tenant_id=str(mine)):
                await conn.execute(refused, (other,))  # type: ignore[arg-type]
    # Calling the storing helper directly does not get round the claims.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not yours"):
        async with claims(conn, role="tenant", tenant_id=str(mine)):
            await conn.execute("SELECT aoer_store_summary_as_worker(%s)", (other,))
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE aoer_tenant")  # no claims at all
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not yours"):
            await conn.execute("SELECT aoer_store_summary_as_worker(%s)", (other,))

    # Nor does a role without claims that is not the owner's, aoer_app's or BYPASSRLS
    # (PostgREST's anon calling it through rpc).
    owner = await connect(owner_db_url)
    try:
        await owner.execute(
            "DO $$ BEGIN CREATE ROLE aoer_test_anon NOLOGIN;"
            " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )  # cluster-global, like aoer_tenant; left in place
        async with owner.transaction():
            await owner.execute("SET LOCAL ROLE aoer_test_anon")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not yours"):
                await owner.execute("SELECT aoer_store_summary_as_worker(%s)", (other,))
    finally:
        await owner.close()

    stored = await rows(conn, "SELECT tenant_id FROM aoer_summary")
    assert [r["tenant_id"] for r in stored] == [mine]
    queued = await rows(conn, "SELECT id, tenant_id, priority FROM aoer_queue ORDER BY priority")
    assert {(r["tenant_id"], r["priority"]) for r in queued} == {(mine, "urgent"), (other, "high")}
    assert job["id"] in {r["id"] for r in queued}


async def test_an_organisations_claims_limit_them_to_its_tenants(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    ours, theirs = await make_tenant("Ours"), await make_tenant("Theirs")
    [org] = await rows(conn, "INSERT INTO organizations (name) VALUES ('Group') RETURNING id")
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org["id"], ours))
    for tenant in (ours, theirs):
        await add_signals(tenant, FIVE_DAYS)
        await queue.enqueue(session_of(conn), tenant, "low")

    async with claims(conn, role="org", org_id=str(org["id"])):
        assert await rows(conn, "SELECT * FROM compute_aoer_for_tenant(%s)", theirs) == []
        assert len(await rows(conn, "SELECT * FROM compute_aoer_for_tenant(%s)", ours)) == 1
        [status] = await rows(conn, "SELECT * FROM get_aoer_queue_status()")
        assert status["job_count"] == 1
        await conn.execute("SELECT queue_tenant_recompute(%s, 'high')", (ours,))
        assert await rows(conn, "SELECT update_aoer_summary(%s) AS ok", ours) == [{"ok": True}]
    with pytest.raises(psycopg.errors.NoDataFound):
        async with claims(conn, role="org", org_id=str(org["id"])):
            await conn.execute("SELECT update_aoer_summary(%s)", (theirs,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with claims(conn, role="org", org_id=str(org["id"])):
            await conn.execute("SELECT aoer_store_summary_as_worker(%s)", (theirs,))
    assert [r["tenant_id"] for r in await rows(conn, "SELECT tenant_id FROM aoer_summary")] == [
        ours
    ]
