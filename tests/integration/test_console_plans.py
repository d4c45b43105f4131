"""The console's job list stays a keyset range scan of its indexes at any page depth, with
custom and generic plans alike (EXPLAIN), so a page over a million jobs costs `limit` rows."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.store.console import FIRST_PAGE_AT, FIRST_PAGE_ID, JobFilter, list_query
from tests.conftest import session_of
from tests.integration.test_query_plans import nodes_in

TENANT = "00000000-0000-0000-0000-000000000007"
# A cursor deep in the list: ~2 % of the jobs are older (the last pages).
DEEP = datetime.now(UTC) - timedelta(days=340)
QUEUED = "aoer_queue_console_queued_idx"
FINISHED = "aoer_queue_console_finished_idx"
IN_FLIGHT = "aoer_queue_lease_idx"
# Each filter and the indexes its page is read from, every one of them: a partial index per
# state (the list in general reads one page of each), one for the rare priorities, one per
# tenant.
CASES: dict[str, tuple[JobFilter, set[str]]] = {
    "all": (JobFilter(), {QUEUED, IN_FLIGHT, FINISHED}),
    "failed": (JobFilter(status="failed"), {"aoer_queue_console_failed_idx"}),
    "queued": (JobFilter(status="queued"), {QUEUED}),
    "processing": (JobFilter(status="processing"), {IN_FLIGHT}),
    "completed": (JobFilter(status="completed"), {FINISHED}),
    "completed_urgent": (
        JobFilter(status="completed", priority="urgent"),
        {"aoer_queue_console_priority_idx"},
    ),
    "high": (JobFilter(priority="high"), {"aoer_queue_console_priority_idx"}),
    "low": (JobFilter(priority="low"), {QUEUED, IN_FLIGHT, FINISHED}),
    "tenant": (
        JobFilter(tenant_id=UUID(TENANT), status="failed"),
        {"aoer_queue_console_tenant_idx"},
    ),
}
# Read whole and sorted, which is allowed where the rows are few: one dealership's jobs, and
# the jobs in flight (the batches workers hold).
SORTED = {"aoer_queue_console_tenant_idx", IN_FLIGHT}


@pytest.fixture
async def many_jobs(conn: Connection) -> Connection:
    """100,000 jobs of 1,000 tenants over a year: mostly completed, some failed, the newest
    500 waiting and the next 2,000 in flight."""
    await conn.execute(
        "INSERT INTO tenants (id, name) SELECT ('00000000-0000-0000-0000-' ||"
        " lpad(g::text, 12, '0'))::uuid, 'd' || g FROM generate_series(1, 1000) g"
    )
    await conn.execute(
        """
        INSERT INTO aoer_queue (tenant_id, priority, status, created_at, completed_at,
                                locked_by, lease_expires_at)
        SELECT ('00000000-0000-0000-0000-' || lpad((1 + g % 1000)::text, 12, '0'))::uuid,
               (ARRAY['low', 'low', 'low', 'medium', 'high', 'urgent'])[1 + g % 6],
               s.status, now() - make_interval(mins => g * 5),
               CASE WHEN s.status IN ('completed', 'failed')
                    THEN now() - make_interval(mins => g * 5) END,
               CASE WHEN s.status = 'processing' THEN 'w' || g % 4 END,
               CASE WHEN s.status = 'processing' THEN now() + interval '30 seconds' END
        FROM generate_series(1, 100000) g
        CROSS JOIN LATERAL (
            SELECT CASE WHEN g <= 500 THEN 'queued' WHEN g <= 2500 THEN 'processing'
                        WHEN g % 50 = 0 THEN 'failed' ELSE 'completed' END AS status
        ) s
        """
    )
    await conn.execute("ANALYZE aoer_queue")
    await conn.execute("ANALYZE tenants")
    return conn


async def plan(conn: Connection, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = await conn.execute(b"EXPLAIN (FORMAT JSON) " + query(name).encode(), params)
    row = await cur.fetchone()
    assert row is not None
    found = row["QUERY PLAN"]
    return nodes_in(json.loads(found) if isinstance(found, str) else found)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_job_list_is_a_range_scan_of_its_index_at_any_depth(
    many_jobs: Connection, case: str
) -> None:
    f, index = CASES[case]
    for mode in ("force_custom_plan", "force_generic_plan"):
        await many_jobs.execute(f"SET plan_cache_mode = {mode}")  # type: ignore[arg-type]
        for before_at in (FIRST_PAGE_AT, DEEP):
            params = {
                "status": f.status,
                "priority": f.priority,
                "tenant_id": f.tenant_id,
                "before_at": before_at,
                "before_id": FIRST_PAGE_ID,
                "limit": 50,
            }
            nodes = await plan(many_jobs, list_query(f), params)
            shown = f"{mode}, {before_at}: " + json.dumps(nodes[:12], indent=1, default=str)[:4000]
            scans = [n for n in nodes if n.get("Index Name", "").startswith("aoer_queue")]
            assert {scan["Index Name"] for scan in scans} == index, shown
            assert len(scans) == len(index), shown
            assert not any(n["Node Type"] == "Seq Scan" for n in nodes), shown
            for scan in scans:
                if scan["Index Name"] in SORTED:
                    continue
                # The cursor is an index condition (the scan starts at the page), not a
                # filter that reads every newer row first.
                assert "created_at" in scan.get("Index Cond", ""), shown
                # The index's order is the page's: its own limit stops it after `limit` rows,
                # with no sort in between.
                assert scan["Node Type"] == "Index Scan", shown
                limits = [n for n in nodes if n["Node Type"] == "Limit" and scan in nodes_in(n)]
                assert limits, shown
                own = min(limits, key=lambda n: len(nodes_in(n)))
                path = [n for n in nodes_in(own) if scan in nodes_in(n)]
                assert not any(n["Node Type"] == "Sort" for n in path), shown


async def leaf_density(conn: Connection, index: str) -> float:
    cur = await conn.execute("SELECT avg_leaf_density AS d FROM pgstatindex(%s)", (index,))
    row = await cur.fetchone()
    assert row is not None
    return float(row["d"])


async def test_a_refresh_fills_the_pages_of_the_consoles_indexes(conn: Connection) -> None:
    """A job's entry in the indexes of waiting and of finished jobs is its creation time and
    time-ordered id: the newest key of the index. Declared newest first, every entry landed on
    the left edge, which a B-tree splits half and half (pages half full); ascending and read
    backwards they are appended on the right, which it splits leaving them full (0026) — as
    long as the ids of one statement are in order within a millisecond too (0028): ordered only
    to the millisecond, a 4,000-job statement on a fast host came out 57-74 % dense."""
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    await conn.execute("INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, 4000) g")
    await conn.execute(query("enqueue_all_active"), {"priority": "low", "max_retries": 3})
    assert await leaf_density(conn, QUEUED) > 75
    session = session_of(conn, lease_s=30.0)
    while claimed := await session.jobs.claim("w", 1000):
        async with conn.transaction():
            await session.jobs.complete("w", [job.id for job in claimed])
    assert await leaf_density(conn, FINISHED) > 75
