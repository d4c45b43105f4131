"""The cron scheduler: each tick fires once across several workers; a missed tick catches up."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from aoer.db.pool import Connection, connect
from aoer.store import Session, Store
from aoer.types import JsonObject
from aoer.worker.scheduler import ScheduledJob, fire_if_due
from tests.conftest import MakeTenant, session_of


def every_minute(fired: list[str]) -> ScheduledJob:
    async def action(session: Session) -> JsonObject:
        fired.append("x")
        cur = await session.conn.execute("SELECT count(*) AS n FROM tenants")
        return dict(await cur.fetchone() or {})

    return ScheduledJob("test-tick", "* * * * *", action)


async def test_three_schedulers_fire_each_tick_exactly_once(db_url: str) -> None:
    fired: list[str] = []
    job = every_minute(fired)
    conns = [await connect(db_url) for _ in range(3)]
    start = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
    try:
        for minute in range(5):
            now = start + timedelta(minutes=minute)
            results = await asyncio.gather(
                *(
                    fire_if_due(session_of(c), job, f"scheduler-{i}", now)
                    for i, c in enumerate(conns)
                )
            )
            assert sum(r is not None for r in results) == 1, f"tick {minute} fired once"
            # a second pass over the same tick fires nothing
            again = await asyncio.gather(
                *(fire_if_due(session_of(c), job, "late", now) for c in conns)
            )
            assert again == [None, None, None]
        cur = await conns[0].execute("SELECT tick FROM aoer_cron_ticks ORDER BY tick")
        ticks = [r["tick"] for r in await cur.fetchall()]
    finally:
        for c in conns:
            await c.close()
    assert len(fired) == 5
    assert ticks == [start.replace(second=0) + timedelta(minutes=m) for m in range(5)]


async def test_missed_tick_fires_once_on_start(conn: Connection) -> None:
    fired: list[str] = []
    job = ScheduledJob("six-hourly", "0 */6 * * *", every_minute(fired).action)
    # Everything was down from 05:00 to 13:30: the 06:00 and 12:00 ticks were missed.
    await conn.execute(
        "INSERT INTO aoer_cron_ticks (name, tick, fired_by) VALUES ('six-hourly', %s, 'old')",
        (datetime(2026, 11, 28, 0, 0, tzinfo=UTC),),
    )
    back_up = datetime(2026, 11, 28, 13, 30, tzinfo=UTC)
    assert await fire_if_due(session_of(conn), job, "w1", back_up) is not None
    assert await fire_if_due(session_of(conn), job, "w2", back_up + timedelta(minutes=5)) is None
    assert len(fired) == 1, "one catch-up firing, not one per missed tick"


async def test_cron_tick_queues_all_active_tenants_at_low(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    from aoer.bootstrap.worker import scheduled_jobs
    from aoer.config import Settings

    for i in range(3):
        await make_tenant(f"t{i}")
    await make_tenant("inactive", active=False)
    [recompute] = [j for j in scheduled_jobs(Settings()) if j.name == "recompute"]
    result = await fire_if_due(session_of(conn), recompute, "w1")
    assert result is not None
    assert (result["queued"], result["tenants"], result["chunks"]) == (3, 3, 1)
    cur = await conn.execute("SELECT DISTINCT priority FROM aoer_queue")
    assert await cur.fetchall() == [{"priority": "low"}]


async def test_a_failing_action_leaves_the_tick_to_fire_again(conn: Connection) -> None:
    calls: list[int] = []

    async def flaky(c: Connection) -> JsonObject:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return {}

    job = ScheduledJob("flaky", "* * * * *", flaky)
    now = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
    with pytest.raises(RuntimeError, match="hiccup"):
        await fire_if_due(session_of(conn), job, "w1", now)
    assert await fire_if_due(session_of(conn), job, "w1", now) == {}
    assert len(calls) == 2


# -- The recompute tick in chunks (issue 16) -------------------------------------------------


def chunked_recompute(chunk: int, **env: object) -> ScheduledJob:
    from aoer.bootstrap.worker import scheduled_jobs
    from aoer.config import Settings

    settings = Settings(AOER_TICK_CHUNK=chunk, **env)  # type: ignore[arg-type]
    [recompute] = [j for j in scheduled_jobs(settings) if j.name == "recompute"]
    return recompute


async def many_tenants(conn: Connection, active: int, inactive: int = 0) -> None:
    await conn.execute(
        "INSERT INTO tenants (name, active) SELECT 't' || g, g <= %s FROM generate_series(1, %s) g",
        (active, active + inactive),
    )


async def queued_once(conn: Connection) -> dict[str, int]:
    """Active tenants with exactly one job, with none, with more; jobs of inactive tenants."""
    cur = await conn.execute(
        """SELECT count(*) FILTER (WHERE t.active AND n = 1) AS once,
                  count(*) FILTER (WHERE t.active AND n = 0) AS never,
                  count(*) FILTER (WHERE t.active AND n > 1) AS twice,
                  count(*) FILTER (WHERE NOT t.active AND n > 0) AS inactive
           FROM tenants t
           CROSS JOIN LATERAL (SELECT count(*) AS n FROM aoer_queue q
                               WHERE q.tenant_id = t.id) jobs"""
    )
    return dict(await cur.fetchone() or {})


async def test_several_schedulers_fire_the_chunked_tick_once(db_url: str, conn: Connection) -> None:
    await many_tenants(conn, active=95, inactive=5)
    job = chunked_recompute(7)
    conns = [await connect(db_url) for _ in range(3)]
    now = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
    try:
        results = await asyncio.gather(
            *(fire_if_due(session_of(c), job, f"s{i}", now) for i, c in enumerate(conns))
        )
        again = await asyncio.gather(*(fire_if_due(session_of(c), job, "late", now) for c in conns))
    finally:
        for c in conns:
            await c.close()
    fired = [r for r in results if r is not None]
    assert len(fired) == 1
    assert (fired[0]["queued"], fired[0]["chunks"], fired[0]["resumed"]) == (95, 14, False)
    assert again == [None, None, None]
    assert await queued_once(conn) == {"once": 95, "never": 0, "twice": 0, "inactive": 0}
    cur = await conn.execute("SELECT count(*) AS n, bool_and(done_at IS NOT NULL) AS done"
                             " FROM aoer_cron_ticks WHERE name = 'recompute'")  # fmt: skip
    assert await cur.fetchone() == {"n": 1, "done": True}


async def test_a_tick_that_died_mid_way_is_resumed_without_losing_or_doubling_tenants(
    db_url: str, conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoer import queue

    await many_tenants(conn, active=50)
    job = chunked_recompute(6)
    real = queue.queue_cron_chunk
    calls: list[int] = []

    async def dies_in_chunk_four(session: Session, after: object, limit: int) -> object:
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("scheduler died")
        return await real(session, after, limit)  # type: ignore[arg-type]

    monkeypatch.setattr("aoer.bootstrap.worker.queue_cron_chunk", dies_in_chunk_four)
    first = await connect(db_url)
    now = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
    try:
        with pytest.raises(RuntimeError, match="died"):
            await fire_if_due(session_of(first), job, "dies", now)
    finally:
        await first.close()
    cur = await conn.execute("SELECT done_at, result FROM aoer_cron_ticks WHERE name = 'recompute'")
    row = await cur.fetchone()
    assert row is not None
    assert row["done_at"] is None
    assert row["result"]["queued"] == 18  # three chunks of six committed, the fourth rolled back
    assert await queued_once(conn) == {"once": 18, "never": 32, "twice": 0, "inactive": 0}

    result = await fire_if_due(session_of(conn), job, "next", now)  # the same tick, claimed
    assert result is not None
    assert (result["queued"], result["resumed"]) == (50, True)
    assert await queued_once(conn) == {"once": 50, "never": 0, "twice": 0, "inactive": 0}


@pytest.mark.slow
async def test_a_job_that_keeps_failing_is_retried_after_a_growing_pause_not_every_few_seconds(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from aoer.worker.scheduler import run_scheduler

    attempts: list[float] = []

    async def fails(session: Session) -> JsonObject:
        attempts.append(asyncio.get_running_loop().time())
        raise RuntimeError("statement too big")

    job = ScheduledJob("always-fails", "0 0 1 1 *", fails)  # its last tick is always due
    stopping = asyncio.Event()
    running = asyncio.create_task(run_scheduler(store, [job], "w1", stopping))
    await asyncio.sleep(6.0)  # longer than the old fixed 5 s retry
    stopping.set()
    await asyncio.wait_for(running, 5)

    assert len(attempts) == 1
    assert "always-fails (1 failure(s) in a row; next try in 60 s)" in caplog.text


def test_the_pause_after_a_failure_doubles_from_a_minute_up_to_an_hour() -> None:
    from aoer.worker.scheduler import error_retry_s

    assert [error_retry_s(n) for n in (1, 2, 3, 7, 50)] == [60, 120, 240, 3600, 3600]


async def test_a_follow_up_runs_once_the_ticks_transaction_committed(
    conn: Connection, db_url: str
) -> None:
    seen: list[object] = []
    other = await connect(db_url)

    async def action(session: Session) -> JsonObject:
        await session.conn.execute("INSERT INTO tenants (name) VALUES ('made by the tick')")
        return {"made": 1}

    async def follow_up(session: Session, result: JsonObject) -> None:
        # Another connection sees the action's work: it is committed, not just done.
        cur = await other.execute("SELECT count(*) AS n FROM tenants")
        seen.append(((await cur.fetchone() or {})["n"], result))

    job = ScheduledJob("with-follow-up", "* * * * *", action, after_commit=follow_up)
    now = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
    try:
        assert await fire_if_due(session_of(conn), job, "w1", now) == {"made": 1}
        assert await fire_if_due(session_of(conn), job, "w2", now) is None
    finally:
        await other.close()
    assert seen == [(1, {"made": 1})]


async def test_the_tick_says_how_many_tenants_were_already_waiting(
    conn: Connection, db_url: str, make_tenant: MakeTenant, caplog: pytest.LogCaptureFixture
) -> None:
    """Waiting jobs a worker is claiming at that moment are left to it (SKIP LOCKED) and not
    counted: "Queued 1 tenants" after "queuing all tenants" of a fleet of three would read as
    two left out, so the line after it says they were already waiting (the contract's line
    unchanged)."""
    from aoer import queue
    from aoer.bootstrap.worker import scheduled_jobs
    from aoer.config import Settings

    tenants = [await make_tenant(f"t{i}") for i in range(3)]
    await queue.enqueue_many(session_of(conn), tenants[:2], "high")
    [recompute] = [j for j in scheduled_jobs(Settings()) if j.name == "recompute"]
    claiming = await connect(db_url)
    try:
        async with claiming.transaction():
            await claiming.execute("SELECT id FROM aoer_queue FOR UPDATE")  # a claim under way
            with caplog.at_level("INFO"):
                result = await fire_if_due(session_of(conn), recompute, "w1")
    finally:
        await claiming.close()
    assert result is not None
    assert (result["queued"], result["tenants"]) == (1, 3)
    lines = [r.getMessage() for r in caplog.records if r.name == "aoer.queue.jobs"]
    assert lines[-2:] == [
        "[AOER] Queued 1 tenants for recompute",
        "[AOER] 2 more tenants were already waiting to be recomputed",
    ]
