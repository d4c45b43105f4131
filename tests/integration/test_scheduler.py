"""The cron scheduler: each tick fires once across several workers; a missed tick catches up."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from aoer.db.pool import Connection, connect
from aoer.store import Session
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
    assert result == {"queued": 3}
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
