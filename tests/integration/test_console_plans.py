"""The console's job list stays a keyset range scan of its own index at any page depth, with
custom and generic plans alike (EXPLAIN), so a page over a million jobs costs `limit` rows."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.store.console import FIRST_PAGE_AT, FIRST_PAGE_ID, JobFilter, list_query
from tests.integration.test_query_plans import nodes_in

TENANT = "00000000-0000-0000-0000-000000000007"
# A cursor deep in the list: ~2 % of the jobs are older (the last pages).
DEEP = datetime.now(UTC) - timedelta(days=340)
# Each filter and the index its page is read from: a partial index for the rare values, the
# general one for the common (`completed`, `low`), where they are dense.
CASES: dict[str, tuple[JobFilter, set[str]]] = {
    "all": (JobFilter(), {"aoer_queue_console_idx"}),
    "failed": (JobFilter(status="failed"), {"aoer_queue_console_failed_idx"}),
    "queued": (JobFilter(status="queued"), {"aoer_queue_console_queued_idx"}),
    "completed": (JobFilter(status="completed"), {"aoer_queue_console_idx"}),
    "completed_urgent": (
        JobFilter(status="completed", priority="urgent"),
        {"aoer_queue_console_priority_idx"},
    ),
    "high": (JobFilter(priority="high"), {"aoer_queue_console_priority_idx"}),
    "low": (JobFilter(priority="low"), {"aoer_queue_console_idx"}),
    "tenant": (
        JobFilter(tenant_id=UUID(TENANT), status="failed"),
        {"aoer_queue_console_tenant_idx"},
    ),
}


@pytest.fixture
async def many_jobs(conn: Connection) -> Connection:
    """100,000 jobs of 1,000 tenants over a year: mostly completed, some failed, the newest
    500 waiting."""
    await conn.execute(
        "INSERT INTO tenants (id, name) SELECT ('00000000-0000-0000-0000-' ||"
        " lpad(g::text, 12, '0'))::uuid, 'd' || g FROM generate_series(1, 1000) g"
    )
    await conn.execute(
        """
        INSERT INTO aoer_queue (tenant_id, priority, status, created_at, completed_at)
        SELECT ('00000000-0000-0000-0000-' || lpad((1 + g % 1000)::text, 12, '0'))::uuid,
               (ARRAY['low', 'low', 'low', 'medium', 'high', 'urgent'])[1 + g % 6],
               CASE WHEN g <= 500 THEN 'queued' WHEN g % 50 = 0 THEN 'failed'
                    ELSE 'completed' END,
               now() - make_interval(mins => g * 5), now() - make_interval(mins => g * 5)
        FROM generate_series(1, 100000) g
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
            shown = f"{mode}, {before_at}: " + json.dumps(nodes[:6], indent=1, default=str)[:3000]
            [scan] = [n for n in nodes if n.get("Index Name", "").startswith("aoer_queue")]
            assert scan["Index Name"] in index, shown
            # The cursor is an index condition (the scan starts at the page), not a filter
            # that reads every newer row first.
            assert "created_at" in scan.get("Index Cond", ""), shown
            assert not any(n["Node Type"] == "Seq Scan" for n in nodes), shown
            if case == "tenant":
                # One dealership's jobs are few: reading them all, then sorting, is allowed.
                continue
            # The index's order is the page's: no sort, the scan stops after `limit` rows.
            assert scan["Node Type"] == "Index Scan", shown
            assert not any(n["Node Type"] == "Sort" for n in nodes), shown
            limit = next(n for n in nodes if n["Node Type"] == "Limit")
            assert scan in nodes_in(limit), shown
