"""Issue 17: the first batches after a tick took seconds instead of ~0.1 s.

Two causes, each pinned here with raw SQL and the named queries only (and a third, found
under issue 16's mixed load, through the store):
- the statistics of `aoer_queue` never see a job in flight under the current worker's id,
  so the planner took `status = 'processing' AND locked_by = ...` for one row and joined the
  held ids against every job in flight (a nested loop: batch x jobs in flight comparisons);
- renewing leases waited for the row locks of a batch being completed, and held up the
  worker's other batches behind the rows it had locked already;
- a prepared claim kept the generic plan PostgreSQL made for it while the queue was empty,
  and after a tick tested every queued row against every claimed id.
"""

import json
from typing import Any
from uuid import UUID

import psycopg
import pytest

from aoer.constants import RECOMPUTE_EVENT
from aoer.db.pool import Connection, connect
from aoer.db.queries import query
from tests.conftest import MakeTenant, session_of
from tests.integration.test_query_plans import fleet_after_a_drain, nodes_in

TENANTS = 12_000
BATCH = 1_000
IN_FLIGHT = 4  # batches claimed at once: two workers with two slots each
LEASE_S = 30.0
# The planner lands on either side of a near tie (bench/README.md): each setting below is a
# plan it chose during slow drains, or one it may choose; none may cost more than linear work.
PLANNER_SETTINGS = (
    {},
    {"enable_hashjoin": "off"},
    {"enable_nestloop": "off"},
)


@pytest.fixture
async def after_tick(conn: Connection) -> dict[str, list[UUID]]:
    """A fleet right after a tick: statistics taken when every job was finished (as autovacuum
    leaves them after a drain), the tick's jobs queued, four batches claimed by two workers."""
    await fleet_after_a_drain(conn, TENANTS)
    await conn.execute(query("enqueue_all_active"), {"priority": "low", "max_retries": 3})
    held: dict[str, list[UUID]] = {}
    for slot in range(IN_FLIGHT):
        worker = f"worker-{slot % 2}"
        cur = await conn.execute(
            query("claim_jobs"),
            {"worker_id": worker, "limit": BATCH, "lease_s": LEASE_S, "min_priority": "low"},
        )
        held[f"{worker}/{slot}"] = [UUID(str(r["id"])) for r in await cur.fetchall()]
    return held


async def _work(
    conn: Connection, name: str, params: dict[str, Any], settings: dict[str, str]
) -> tuple[int, int, str]:
    """EXPLAIN ANALYZE the named query (rolled back): rows it discarded, rows it returned."""
    async with conn.transaction(force_rollback=True):
        for setting, value in settings.items():
            await conn.execute(f"SET LOCAL {setting} = {value}")  # type: ignore[arg-type]
        cur = await conn.execute(
            b"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + query(name).encode(), params
        )
        row = await cur.fetchone()
    assert row is not None
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes = nodes_in(plan)
    discarded = sum(
        n.get("Rows Removed by Join Filter", 0) + n.get("Rows Removed by Filter", 0) for n in nodes
    )
    return discarded, nodes[0]["Actual Rows"], json.dumps(plan, indent=1, default=str)[:3000]


@pytest.mark.slow
@pytest.mark.parametrize("settings", PLANNER_SETTINGS, ids=lambda s: ",".join(s) or "default")
async def test_hot_statements_after_a_tick_do_linear_work(
    after_tick: dict[str, list[UUID]], conn: Connection, settings: dict[str, str]
) -> None:
    # Linear: a few passes over the batch and the jobs in flight. The nested loop of the slow
    # drains discarded BATCH x IN_FLIGHT x BATCH = 4,000,000 rows for each batch.
    bound = 10 * BATCH * IN_FLIGHT
    ids = after_tick["worker-0/0"]
    discarded, returned, shown = await _work(
        conn,
        "complete_jobs",
        {"worker_id": "worker-0", "job_ids": ids, "event_type": RECOMPUTE_EVENT},
        settings,
    )
    assert returned == BATCH
    assert discarded <= bound, shown
    both = ids + after_tick["worker-0/2"]
    discarded, returned, shown = await _work(
        conn, "renew_leases", {"worker_id": "worker-0", "job_ids": both, "lease_s": 30.0}, settings
    )
    assert returned == 2 * BATCH
    assert discarded <= bound, shown


async def test_renewal_neither_waits_for_a_completing_batch_nor_reports_its_jobs_lost(
    db_url: str, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(6)]
    await conn.execute(query("enqueue_all_active"), {"priority": "low", "max_retries": 3})
    batches = []
    for _ in range(2):
        cur = await conn.execute(
            query("claim_jobs"),
            {
                "worker_id": "w",
                "limit": len(tenants) // 2,
                "lease_s": 1.0,
                "min_priority": "low",
            },
        )
        batches.append([r["id"] for r in await cur.fetchall()])
    completing, waiting = batches
    # One batch is inside complete_jobs (its rows locked until it commits) ...
    async with await psycopg.AsyncConnection.connect(db_url) as batch, batch.transaction():
        await batch.execute(
            query("complete_jobs"),
            {"worker_id": "w", "job_ids": completing, "event_type": RECOMPUTE_EVENT},
        )
        # ... while the lease keeper renews everything the worker holds.
        await conn.execute("SET lock_timeout = '2s'")
        cur = await conn.execute(
            query("renew_leases"),
            {"worker_id": "w", "job_ids": completing + waiting, "lease_s": 600.0},
        )
        checks = await cur.fetchall()
    assert {r["id"] for r in checks} == set(completing + waiting)
    assert not any(r["lost"] for r in checks), "a completing batch's jobs are not lost"
    assert {r["id"] for r in checks if r["renewed"]} == set(waiting)
    cur = await conn.execute(
        "SELECT id, status, lease_expires_at > now() + interval '5 minutes' AS renewed"
        " FROM aoer_queue"
    )
    state = {r["id"]: (r["status"], r["renewed"]) for r in await cur.fetchall()}
    assert all(state[i] == ("processing", True) for i in waiting)
    assert all(state[i][0] == "completed" for i in completing)


# Enough claims for psycopg to prepare the statement (after 5 executions) and for PostgreSQL
# to try 5 custom plans and then settle on a generic one.
CLAIMS_BEFORE_THE_TICK = 15


@pytest.mark.slow
async def test_a_worker_that_started_on_an_empty_queue_claims_a_tick_by_index(
    owner_db_url: str,
) -> None:
    """A worker claims on an empty queue for a while, then a tick queues 12,000 jobs: its next
    claim must find them by index, not with a plan cached while the table was empty (before
    the fix: a sequential scan of the queue testing each row against the 1,000 claimed ids,
    and the urgent probe walking every queued job; 0.6-3.9 s a claim in the mixed API row)."""
    conn = await connect(owner_db_url)  # LOAD 'auto_explain' needs the superuser
    try:
        await conn.execute("VACUUM ANALYZE aoer_queue")  # statistics of an empty queue
        jobs = session_of(conn, batch_size=BATCH).jobs
        for _ in range(CLAIMS_BEFORE_THE_TICK):
            assert await jobs.claim("worker") == []
        await conn.execute(
            "INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, %s) g", (TENANTS,)
        )
        await conn.execute(query("enqueue_all_active"), {"priority": "low", "max_retries": 3})
        plans: list[str] = []
        conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        for setting in (
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_analyze = on",
            "auto_explain.log_timing = off",
            "auto_explain.log_format = json",
            "client_min_messages = log",
        ):
            await conn.execute(f"SET {setting}")  # type: ignore[arg-type]
        await conn.execute("LOAD 'auto_explain'")
        claimed = await jobs.claim("worker")
        await conn.execute("SET client_min_messages = notice")
    finally:
        await conn.close()
    assert len(claimed) == BATCH
    claims = [json.loads(p.split("plan:", 1)[1]) for p in plans if "Take up to" in p]
    assert len(claims) == 1, plans
    nodes = nodes_in(claims[0])
    shown = json.dumps(claims[0], indent=1, default=str)[:3000]
    scanned = [
        n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "aoer_queue"
    ]
    assert scanned == [], shown
    discarded = sum(n.get("Rows Removed by Filter", 0) for n in nodes)
    assert discarded <= 2 * BATCH, shown
