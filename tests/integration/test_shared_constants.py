"""Values that Python and SQL both rely on are defined once in `aoer.constants`; where the
schema spells one out itself (a CHECK constraint, a function body), these tests read both."""

import re

from aoer.constants import JOB_STATUSES, PRIORITIES, RECOMPUTE_EVENT, SCORE_WINDOW_DAYS
from aoer.db.pool import Connection
from aoer.db.queries import query


async def check_values(conn: Connection, table: str, column: str) -> set[str]:
    """The string literals of the CHECK constraint on `table.column`."""
    cur = await conn.execute(
        "SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND c.conkey = ARRAY[a.attnum]"
        " WHERE c.conrelid = %s::regclass AND c.contype = 'c' AND a.attname = %s",
        (table, column),
    )
    [row] = await cur.fetchall()
    return set(re.findall(r"'([a-z_]+)'", str(row["def"])))


async def test_job_statuses_and_priorities_match_the_schema(conn: Connection) -> None:
    assert await check_values(conn, "aoer_queue", "status") == set(JOB_STATUSES)
    assert await check_values(conn, "aoer_queue", "priority") == set(PRIORITIES)
    cur = await conn.execute(
        "SELECT p, aoer_priority_rank(p) AS rank FROM unnest(%s::text[]) p", (list(PRIORITIES),)
    )
    ranks = [r["rank"] for r in await cur.fetchall()]
    assert ranks == sorted(ranks) == list(range(1, len(PRIORITIES) + 1)), "lowest first"


async def test_the_score_window_is_the_constant(conn: Connection) -> None:
    cur = await conn.execute(
        "SELECT pg_get_functiondef('aoer_score_terms(uuid[], date)'::regprocedure) AS d"
    )
    row = await cur.fetchone()
    assert row is not None
    windows = set(re.findall(r"as_of - (\d+) AND as_of", str(row["d"])))
    assert windows == {str(SCORE_WINDOW_DAYS)}


def test_queries_take_channels_and_event_types_as_parameters() -> None:
    """No query spells a NOTIFY channel or the recompute event type: both come from
    `aoer.constants` as parameters."""
    for name in ("notify_queue", "notify_summaries"):
        assert "%(channel)s" in query(name)
    for name in ("complete_jobs", "score_history", "recent_events", "demo_history"):
        sql = query(name)
        assert "%(event_type)s" in sql, name
        assert f"'{RECOMPUTE_EVENT}'" not in sql, name
