"""The hot queue queries stay on their indexes (EXPLAIN), so a large backlog stays fast."""

import json
from typing import Any

import pytest

from aoer.constants import RECOMPUTE_EVENT
from aoer.db.pool import Connection
from aoer.db.queries import query

QUEUED = "aoer_queue_console_queued_idx"

PARAMS: dict[str, dict[str, Any]] = {
    "claim_jobs": {"worker_id": "w", "limit": 500, "lease_s": 30.0, "min_priority": "low"},
    "next_due_at": {},
    "reclaim_expired": {"limit": 10_000, "grace_s": 2.5, "live_grace_s": 600.0, "stale_s": 15.0},
    "queue_statuses": {"tenant_ids": ["00000000-0000-0000-0000-000000000001"]},
}
EXPECTED_INDEX = {
    "claim_jobs": "aoer_queue_claim_idx",
    "next_due_at": "aoer_queue_claim_idx",
    "reclaim_expired": "aoer_queue_lease_idx",
    "queue_statuses": "aoer_queue_console_tenant_idx",
}


def nodes_in(plan: object) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(plan, dict):
        if "Node Type" in plan:
            found.append(plan)
        for value in plan.values():
            found += nodes_in(value)
    elif isinstance(plan, list):
        for item in plan:
            found += nodes_in(item)
    return found


async def fleet_after_a_drain(conn: Connection, tenants: int) -> None:
    """`tenants` tenants, each with a finished job, and the statistics autovacuum leaves after
    a drain: no job waiting or in flight, and only an earlier worker's id in `locked_by`."""
    await conn.execute(
        "INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, %s) g", (tenants,)
    )
    await conn.execute(
        "INSERT INTO aoer_queue (tenant_id, priority, status, locked_by, completed_at)"
        " SELECT id, 'low', 'completed', 'an earlier worker', now() FROM tenants"
    )
    await conn.execute("ANALYZE aoer_queue")
    await conn.execute("ANALYZE tenants")


@pytest.fixture
async def big_queue(conn: Connection) -> Connection:
    """50,000 tenants: a few waiting, most finished, as after many cron ticks."""
    await conn.execute(
        "INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, 50000) g"
    )
    await conn.execute(
        """
        INSERT INTO aoer_queue (tenant_id, priority, status, completed_at)
        SELECT id, 'low', 'completed', now() FROM tenants
        """
    )
    await conn.execute(
        "INSERT INTO aoer_queue (tenant_id, priority) SELECT id, 'high' FROM tenants LIMIT 2000"
    )
    await conn.execute("ANALYZE aoer_queue")
    return conn


@pytest.mark.parametrize("name", sorted(EXPECTED_INDEX))
async def test_hot_query_uses_its_index(big_queue: Connection, name: str) -> None:
    # Plain EXPLAIN plans without running: nothing is claimed or changed.
    cur = await big_queue.execute(b"EXPLAIN (FORMAT JSON) " + query(name).encode(), PARAMS[name])
    row = await cur.fetchone()
    assert row is not None
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes = nodes_in(plan)
    shown = json.dumps(plan, indent=1, default=str)[:4000]
    assert EXPECTED_INDEX[name] in {n.get("Index Name") for n in nodes}, shown
    queue_scans = [n for n in nodes if n.get("Relation Name") == "aoer_queue"]
    assert all(n["Node Type"] != "Seq Scan" for n in queue_scans), shown
    if name == "claim_jobs":
        assert all(n["Node Type"] != "Sort" for n in nodes), "claims walk the index in order"
        # Whether an urgent job leads is asked of the urgent entries alone: reading the head
        # of the whole index walked every entry a drain had claimed and no vacuum had removed.
        probes = [str(n.get("Index Cond", "")) for n in nodes]
        assert any("priority_rank =" in cond for cond in probes), shown


async def test_complete_jobs_probes_each_held_job_by_key(big_queue: Connection) -> None:
    """The hottest statement, planned as during a fleet refresh: 20,000 jobs in flight, one
    worker completing its batch of 1,000. Each held job is found by its primary key: never a
    sequential scan of the queue, and never the quadratic plan that tests every held id
    against every job in flight as a filter (`id = ANY (...)` on the lease index)."""
    await big_queue.execute(
        "UPDATE aoer_queue SET status = 'processing', locked_by = 'w', started_at = now(),"
        " lease_expires_at = now() + interval '30 seconds'"
        " WHERE id IN (SELECT id FROM aoer_queue WHERE status = 'completed' LIMIT 20000)"
    )
    await big_queue.execute("ANALYZE aoer_queue")
    cur = await big_queue.execute(
        "SELECT array_agg(id) AS ids FROM (SELECT id FROM aoer_queue"
        " WHERE status = 'processing' LIMIT 1000) held"
    )
    held = await cur.fetchone()
    assert held is not None
    params = {"worker_id": "w", "job_ids": held["ids"], "event_type": RECOMPUTE_EVENT}
    cur = await big_queue.execute(
        b"EXPLAIN (FORMAT JSON) " + query("complete_jobs").encode(), params
    )
    row = await cur.fetchone()
    assert row is not None
    nodes = nodes_in(row["QUERY PLAN"])
    shown = json.dumps(row["QUERY PLAN"], indent=1, default=str)[:4000]
    queue_scans = [
        n for n in nodes if n.get("Relation Name") == "aoer_queue" and "Scan" in n["Node Type"]
    ]
    assert queue_scans, shown
    for scan in queue_scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), shown
        assert "ANY" not in scan.get("Filter", ""), shown
    queue_indexes = {n["Index Name"] for n in nodes if n.get("Index Name", "").startswith("aoer_q")}
    assert queue_indexes == {"aoer_queue_pkey"}, shown


async def test_sql_helpers_are_inlined_and_keep_their_answers(conn: Connection) -> None:
    cur = await conn.execute(
        "EXPLAIN (VERBOSE, FORMAT JSON) SELECT aoer_grade(s), aoer_risk_level(r),"
        " aoer_priority_rank(p) FROM (VALUES (50.0, 0.3, 'low'), (90, 0.9, 'high')) v (s, r, p)"
    )
    row = await cur.fetchone()
    assert row is not None
    plan = json.dumps(row, default=str)
    for helper in ("aoer_grade", "aoer_risk_level", "aoer_priority_rank"):
        assert helper not in plan, f"{helper} is called, not inlined"
    assert "CASE" in plan
    cur = await conn.execute(
        "SELECT s, r, aoer_grade(s) AS grade, aoer_risk_level(r) AS level FROM (VALUES"
        " (100, 0), (80, 0.2), (79.99, 0.21), (60, 0.5), (59.99, 0.51), (40, 0.8),"
        " (39.99, 0.81), (0, 1), (NULL, NULL)) v (s, r)"
    )
    bands = [(row["grade"], row["level"]) for row in await cur.fetchall()]
    assert bands == [
        ("Excellent", "Low"),
        ("Excellent", "Low"),
        ("Good", "Medium"),
        ("Good", "Medium"),
        ("Fair", "High"),
        ("Fair", "High"),
        ("Poor", "Critical"),
        ("Poor", "Critical"),
        (None, None),
    ]
    cur = await conn.execute(
        "SELECT aoer_priority_rank(p) AS rank FROM unnest("
        "ARRAY['urgent', 'high', 'medium', 'low', 'critical', NULL]) p"
    )
    assert [r["rank"] for r in await cur.fetchall()] == [4, 3, 2, 1, None, None]


async def test_the_tick_does_linear_work_right_after_an_empty_queue_was_analyzed(
    conn: Connection,
) -> None:
    """ANALYZE of an empty queue makes the planner check "no waiting job yet" with a nested
    loop over a sequential scan of aoer_queue; interleaved with the tick's own inserts that
    re-read every new row once per tenant (quadratic: minutes at 100,000 tenants)."""
    tenants = 3000
    await conn.execute(
        "INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, %s) g", (tenants,)
    )
    await conn.execute("VACUUM ANALYZE aoer_queue")
    await conn.execute("ANALYZE tenants")
    params = {"priority": "low", "max_retries": 3}
    async with conn.transaction(force_rollback=True):
        cur = await conn.execute(
            b"EXPLAIN (ANALYZE, FORMAT JSON) " + query("enqueue_all_active").encode(), params
        )
        row = await cur.fetchone()
    assert row is not None
    nodes = nodes_in(row["QUERY PLAN"])
    shown = json.dumps(row["QUERY PLAN"], indent=1, default=str)[:4000]
    rescans = [
        n
        for n in nodes
        if n.get("Relation Name") == "aoer_queue"
        and n["Node Type"] in ("Seq Scan", "Bitmap Heap Scan")
        and int(n.get("Actual Loops", 0)) > 1
    ]
    assert not rescans, shown  # a whole-queue scan per tenant, over the rows being inserted


async def test_a_tick_chunk_reads_only_its_own_tenants_of_the_queue(conn: Connection) -> None:
    """Each chunk of the tick looks for its tenants' waiting jobs. Matched to the chunk alone,
    the planner -- whose statistics of aoer_queue predate the tick, so they count no waiting
    job -- read every waiting job the earlier chunks had queued, for every chunk: quadratic
    in the fleet (bench/README.md, issue 16: the tick at 1,000,000 tenants)."""
    tenants, chunk = 6000, 500
    await fleet_after_a_drain(conn, tenants)
    params: dict[str, Any] = {"priority": "low", "max_retries": 3, "limit": chunk}
    params |= {"after": "00000000-0000-0000-0000-000000000000", "first": True}
    for _ in range(tenants // chunk - 1):
        cur = await conn.execute(query("enqueue_active_chunk"), params)
        done = await cur.fetchone()
        assert done is not None
        assert done["queued"] == chunk
        params |= {"after": done["last_id"], "first": False}
    async with conn.transaction(force_rollback=True):
        cur = await conn.execute(
            b"EXPLAIN (ANALYZE, FORMAT JSON) " + query("enqueue_active_chunk").encode(), params
        )
        row = await cur.fetchone()
    assert row is not None
    shown = json.dumps(row["QUERY PLAN"], indent=1, default=str)[:6000]
    read = {
        f"{n['Node Type']} {n.get('Index Name', '')}": n["Actual Rows"] * n["Actual Loops"]
        for n in nodes_in(row["QUERY PLAN"])
        if n.get("Relation Name") == "aoer_queue" and n["Node Type"] != "ModifyTable"
    }
    assert read, shown
    # 5,500 jobs wait; the chunk's own 500 tenants have none of them.
    assert max(read.values()) <= chunk, (read, shown)


# Statements that look up a tenant's waiting job, each with a tenant that has one (`waiting`)
# or a job of worker "w" in flight (`held`, its lease run out).
LOOKUPS: dict[str, dict[str, Any]] = {
    "enqueue_tenants": {"priority": "low", "max_retries": 3, "notify": False, "channel": "c"},
    "coalesce_retry": {"priority": "high"},
    "fail_jobs": {"worker_id": "w", "errors": ["boom"], "delays_s": [60.0]},
    "release_jobs": {"worker_id": "w", "reason": "released"},
    "reclaim_expired": {"grace_s": 0.0, "limit": 100, "live_grace_s": 600.0, "stale_s": 15.0},
}


@pytest.mark.parametrize("name", sorted(LOOKUPS))
async def test_a_tenants_waiting_job_is_found_by_its_own_index_whatever_the_statistics(
    conn: Connection, name: str
) -> None:
    """Statistics taken when no job waited cost every index of waiting jobs at one row; the
    claim's or the console's index, read whole and filtered on the tenant, then came out
    cheaper than the unique probe, and each lookup read every waiting job (migration 0023)."""
    await fleet_after_a_drain(conn, 6000)
    await conn.execute(
        "INSERT INTO aoer_queue (tenant_id, priority) SELECT id, 'low' FROM tenants"
        " ORDER BY id LIMIT 5000"
    )
    cur = await conn.execute(
        "INSERT INTO aoer_queue (tenant_id, priority, status, locked_by, lease_expires_at)"
        " SELECT id, 'low', 'processing', 'w', now() - interval '1 minute' FROM tenants"
        " ORDER BY id DESC LIMIT 1 RETURNING id"
    )
    held = await cur.fetchone()
    cur = await conn.execute("SELECT id FROM tenants ORDER BY id OFFSET 2500 LIMIT 1")
    waiting = await cur.fetchone()
    assert held is not None
    assert waiting is not None
    params = LOOKUPS[name] | {
        "tenant_ids": [waiting["id"]],
        "tenant_id": waiting["id"],
        "job_ids": [held["id"]],
    }
    async with conn.transaction(force_rollback=True):
        cur = await conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + query(name).encode(), params)
        row = await cur.fetchone()
    assert row is not None
    shown = json.dumps(row["QUERY PLAN"], indent=1, default=str)[:6000]
    scans = [n for n in nodes_in(row["QUERY PLAN"]) if n.get("Relation Name") == "aoer_queue"]
    assert scans, shown
    for scan in scans:
        assert scan.get("Index Name") not in ("aoer_queue_claim_idx", QUEUED), shown
        assert int(scan["Actual Rows"]) * int(scan["Actual Loops"]) <= 2, shown


async def test_the_fleet_sorted_by_change_for_an_organisation_reads_its_tenants_once(
    conn: Connection,
) -> None:
    """Sorting by the 7-day change probes each dealership's events. Under an organisation's
    claims the events' Row Level Security reads the organisation's tenants: once per query
    with aoer_change_over inlined, not once per dealership (18.6 s for 2,000 when it was a
    scalar function running its own query at every call)."""
    cur = await conn.execute("INSERT INTO organizations (name) VALUES ('Big Group') RETURNING id")
    org = (await cur.fetchone())["id"]  # type: ignore[index]
    await conn.execute(
        "INSERT INTO tenants (name, org_id) SELECT 'd' || g, %s FROM generate_series(1, 200) g",
        (org,),
    )
    await conn.execute(
        "INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk, metrics)"
        " SELECT id, 70, 0.2, '{\"aeo\": 70}' FROM tenants"
    )
    await conn.execute(
        "INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)"
        ' SELECT t.id, %s, \'{"aoerScore": 60, "metrics": {"aeo": 60}}\','
        " now() - make_interval(days => d) FROM tenants t, generate_series(0, 9) d",
        (RECOMPUTE_EVENT,),
    )
    params = {
        "name": None, "grade": None, "risk_level": None, "org_id": org,
        "sort": "change7d", "descending": False, "limit": 50, "offset": 0,
        "event_type": RECOMPUTE_EVENT, "min_peers": 3,
    }  # fmt: skip
    async with conn.transaction(force_rollback=True):
        await conn.execute(
            "SELECT set_config('role', 'aoer_tenant', true),"
            " set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": "analyst", "role": "org", "org_id": str(org)}),),
        )
        cur = await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query("fleet_page"), params)
        row = await cur.fetchone()
        cur = await conn.execute(query("fleet_page"), params)
        rows = await cur.fetchall()
    assert row is not None
    shown = json.dumps(row, default=str)
    assert "aoer_change_over" not in shown, "called per row, not inlined"
    # Hashed once (per partition scanned), not once for each of the 200 dealerships.
    tenant_reads = [n for n in nodes_in(row) if n.get("Relation Name") == "tenants"]
    assert tenant_reads, shown
    assert max(n["Actual Loops"] for n in tenant_reads) <= 2, shown
    assert len(rows) == 50
    assert {r["change_7d"] for r in rows} == {10}
