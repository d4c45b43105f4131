"""Retention: the daily tick deletes finished jobs, failures and events past their ages, and
sessions and used login links whose token expired, in batches of their own short
transactions, and nothing that is still waiting, running or able to sign in. (Whole monthly
partitions of events: tests/integration/test_partitions.py.)"""

from uuid import UUID

import pytest

from aoer.bootstrap.worker import scheduled_jobs
from aoer.config import Settings
from aoer.constants import RETENTION_TICK
from aoer.db.pool import Connection
from aoer.queue import retention
from aoer.store import Session
from aoer.types import JsonObject
from aoer.worker.scheduler import ScheduledJob, fire_if_due
from tests.conftest import MakeTenant, session_of

AGES = {"AOER_RETAIN_JOBS_DAYS": 7, "AOER_RETAIN_FAILURES_DAYS": 30, "AOER_RETAIN_EVENTS_DAYS": 90}


async def add_jobs(conn: Connection, tenant: UUID, status: str, n: int, days_ago: int) -> None:
    finished = status in ("completed", "failed")
    await conn.execute(
        """
        INSERT INTO aoer_queue (tenant_id, status, created_at, completed_at, locked_by,
                                lease_expires_at)
        SELECT %(tenant)s, %(status)s::text, now() - make_interval(days => %(days)s),
               CASE WHEN %(finished)s THEN now() - make_interval(days => %(days)s) END,
               CASE WHEN %(status)s::text = 'processing' THEN 'w' END,
               CASE WHEN %(status)s::text = 'processing' THEN now() END
        FROM generate_series(1, %(n)s)
        """,
        {"tenant": tenant, "status": status, "n": n, "days": days_ago, "finished": finished},
    )


async def add_rows(conn: Connection, table: str, tenant: UUID, n: int, days_ago: int) -> None:
    columns = {
        "aoer_failures": ("error_message", "'boom'"),
        "metrics_events": ("event_type", "'aoer_recompute'"),
    }[table]
    await conn.execute(
        f"INSERT INTO {table} (tenant_id, {columns[0]}, created_at)"  # type: ignore[arg-type]
        f" SELECT %s, {columns[1]}, now() - make_interval(days => %s)"
        " FROM generate_series(1, %s)",
        (tenant, days_ago, n),
    )


async def add_sessions(conn: Connection, kind: str, n: int, expires_in: str) -> None:
    await conn.execute(
        "INSERT INTO aoer_sessions (id, kind, subject, role, expires_at)"
        " SELECT gen_random_uuid()::text, %s, 'admin', 'admin', now() + %s::interval"
        " FROM generate_series(1, %s)",
        (kind, expires_in, n),
    )


async def counts(conn: Connection) -> dict[str, int]:
    cur = await conn.execute(
        """SELECT (SELECT count(*) FROM aoer_queue) AS jobs,
                  (SELECT count(*) FROM aoer_queue WHERE status IN ('queued', 'processing'))
                      AS waiting_or_running,
                  (SELECT count(*) FROM aoer_failures) AS failures,
                  (SELECT count(*) FROM metrics_events) AS events,
                  (SELECT count(*) FROM aoer_sessions) AS sessions"""
    )
    row = await cur.fetchone()
    assert row is not None
    return {k: int(v) for k, v in row.items()}


def retention_tick() -> ScheduledJob:
    settings = Settings(**AGES)  # type: ignore[arg-type]
    [tick] = [job for job in scheduled_jobs(settings) if job.name == RETENTION_TICK]
    return tick


async def test_retention_deletes_what_is_past_its_age_and_nothing_else(
    conn: Connection, make_tenant: MakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "RETENTION_BATCH_ROWS", 3)  # several batches per table
    a, b = await make_tenant("A"), await make_tenant("B")
    await add_jobs(conn, a, "completed", 8, days_ago=10)  # past 7 days: deleted
    await add_jobs(conn, a, "failed", 2, days_ago=10)  # past 7 days: deleted
    await add_jobs(conn, a, "completed", 4, days_ago=2)  # kept
    await add_jobs(conn, a, "queued", 1, days_ago=60)  # still waiting: kept however old
    await add_jobs(conn, b, "processing", 1, days_ago=60)  # still running: kept
    await add_rows(conn, "aoer_failures", a, 7, days_ago=31)
    await add_rows(conn, "aoer_failures", a, 2, days_ago=29)
    await add_rows(conn, "metrics_events", b, 10, days_ago=91)
    await add_rows(conn, "metrics_events", b, 5, days_ago=89)
    await add_sessions(conn, "login", 4, "-1 hour")  # expired: deleted
    await add_sessions(conn, "session", 3, "-1 minute")  # expired: deleted
    await add_sessions(conn, "login", 2, "10 minutes")  # a used link not expired yet: kept
    await conn.execute(
        "INSERT INTO aoer_workers (id, host, pid, last_heartbeat_at) VALUES"
        " ('gone', 'h', 1, now() - interval '2 days'),"  # died long ago: deleted
        " ('dead', 'h', 2, now() - interval '1 hour'),"  # died recently: shown as gone, kept
        " ('live', 'h', 3, now())"
    )

    result = await fire_if_due(session_of(conn), retention_tick(), "w1")

    assert result == {
        "deleted": {
            "aoer_queue": 10,
            "aoer_failures": 7,
            "aoer_sessions": 7,
            "aoer_workers": 1,
            "alerts": 0,
        },
        # The migration made this month's partitions and three ahead; these events fell into
        # the default partition (no partition for their month), whose old rows are deleted.
        "partitions": {
            "created": {"aiv_raw_signals": 0, "metrics_events": 0},
            "dropped": {"metrics_events": 0},
            "defaultRowsDeleted": {"metrics_events": 10},
        },
    }
    assert await counts(conn) == {
        "jobs": 6,
        "waiting_or_running": 2,
        "failures": 2,
        "events": 5,
        "sessions": 2,
    }
    assert await fire_if_due(session_of(conn), retention_tick(), "w2") is None, "once per tick"


async def test_retention_commits_batch_by_batch_outside_the_tick_transaction(
    conn: Connection, make_tenant: MakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "RETENTION_BATCH_ROWS", 2)
    tenant = await make_tenant()
    await add_rows(conn, "aoer_failures", tenant, 5, days_ago=500)
    # Every DELETE statement on aoer_failures notes the transaction it ran in.
    await conn.execute(
        """
        CREATE TABLE delete_log (xid bigint, tick_rows bigint);
        CREATE FUNCTION log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO delete_log
            SELECT txid_current(), (SELECT count(*) FROM aoer_cron_ticks WHERE name = 'retention');
            RETURN NULL;
        END $$;
        CREATE TRIGGER log_delete AFTER DELETE ON aoer_failures
            FOR EACH STATEMENT EXECUTE FUNCTION log_delete();
        """
    )
    await fire_if_due(session_of(conn), retention_tick(), "w1")
    cur = await conn.execute("SELECT xid, tick_rows FROM delete_log ORDER BY xid")
    log = await cur.fetchall()
    tick = await conn.execute("SELECT xmin::text::bigint AS xid FROM aoer_cron_ticks")
    tick_xid = (await tick.fetchone() or {})["xid"]  # type: ignore[index]
    # 2 + 2 + 1 rows (a short batch ends it): three statements in three transactions, none
    # of them the one that claimed the tick (whose row they already see committed).
    assert len(log) == 3
    assert len({row["xid"] for row in log}) == 3
    assert all(row["xid"] != tick_xid and row["tick_rows"] == 1 for row in log)


async def test_an_action_outside_the_tick_transaction_releases_a_failed_tick(
    conn: Connection,
) -> None:
    calls: list[int] = []

    async def flaky(session: Session) -> JsonObject:
        c = session.conn
        calls.append(1)
        async with c.transaction():
            await c.execute("CREATE TABLE IF NOT EXISTS progress (n int)")
            await c.execute("INSERT INTO progress VALUES (%s)", (len(calls),))
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return {"done": True}

    job = ScheduledJob("outside", "* * * * *", flaky, in_tick_transaction=False)
    with pytest.raises(RuntimeError, match="hiccup"):
        await fire_if_due(session_of(conn), job, "w1")
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_cron_ticks WHERE name = 'outside'")
    assert await cur.fetchone() == {"n": 0}, "the failed tick was given back"
    assert await fire_if_due(session_of(conn), job, "w1") == {"done": True}
    cur = await conn.execute("SELECT n FROM progress ORDER BY n")
    assert await cur.fetchall() == [{"n": 1}, {"n": 2}], "work committed before the failure stays"
    cur = await conn.execute("SELECT result FROM aoer_cron_ticks WHERE name = 'outside'")
    assert await cur.fetchall() == [{"result": {"done": True}}]
