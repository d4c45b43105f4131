"""The weekly training tick: fired once across schedulers, audited with its tick."""

import asyncio
import contextlib
from datetime import timedelta

from aoer.constants import MODEL_TICK
from aoer.db.pool import Connection, connect
from aoer.store.models import MODEL_LOCK_KEY
from aoer.types import JsonObject
from aoer.worker.scheduler import ScheduledJob, fire_if_due
from tests.conftest import lock_waits, session_of
from tests.model.synthetic import MONDAY_4AM, seed, weekly_training


async def test_two_schedulers_never_train_the_same_weekly_tick_twice(
    conn: Connection, db_url: str
) -> None:
    await seed(conn, outcome="linear")
    job = weekly_training()
    first, second = await connect(db_url), await connect(db_url)
    try:
        # Both wake up during the same week: one trains, the other finds the tick taken.
        now = MONDAY_4AM + timedelta(hours=3)
        results = await asyncio.gather(
            fire_if_due(session_of(first), job, "scheduler-a", now),
            fire_if_due(session_of(second), job, "scheduler-b", now),
        )
        assert sorted(r is not None for r in results) == [False, True]
        [fired] = [r for r in results if r is not None]
        assert fired["decision"] == "promoted"
        later = MONDAY_4AM + timedelta(days=3)
        again = await asyncio.gather(
            fire_if_due(session_of(first), job, "scheduler-a", later),
            fire_if_due(session_of(second), job, "scheduler-b", later),
        )
        assert again == [None, None]
    finally:
        await first.close()
        await second.close()

    cur = await conn.execute("SELECT trigger, tick, decision, id::text AS id FROM model_audit")
    assert await cur.fetchall() == [
        {"trigger": "schedule", "tick": MONDAY_4AM, "decision": "promoted", "id": fired["auditId"]}
    ]
    cur = await conn.execute(
        "SELECT tick, fired_by FROM aoer_cron_ticks WHERE name = %s", (MODEL_TICK,)
    )
    [tick] = await cur.fetchall()
    assert tick["tick"] == MONDAY_4AM
    # One audit_log row, by the scheduler that fired (GET /api/audit?action=model.promote
    # reads these, DESIGN §12).
    cur = await conn.execute(
        "SELECT actor, role, target, details FROM audit_log WHERE action = 'model.promote'"
    )
    assert await cur.fetchall() == [
        {
            "actor": f"scheduler:{tick['fired_by']}",
            "role": "service",
            "target": "v2",
            "details": {"from": "v1", "auditId": fired["auditId"]},
        }
    ]


async def worker_like(db_url: str) -> Connection:
    """A connection with a worker's bounded lock waits (production: 30 s; here 1 s)."""
    conn = await connect(db_url)
    await conn.execute("SET lock_timeout = '1s'")
    return conn


NOW = MONDAY_4AM + timedelta(hours=3)


async def training_held(
    conn: Connection, db_url: str, fired_by: str
) -> tuple[ScheduledJob, Connection, "asyncio.Task[JsonObject | None]"]:
    """A scheduler (on a worker-like connection) that claimed the weekly tick and whose
    training waits, as a long fit would, on the model lock this test holds until it lets go."""
    await seed(conn, outcome="linear")
    job = weekly_training()
    claimer = await worker_like(db_url)
    await conn.execute("SELECT pg_advisory_lock(%s)", (MODEL_LOCK_KEY,))
    training = asyncio.create_task(fire_if_due(session_of(claimer), job, fired_by, NOW))
    await lock_waits(conn, 1)
    return job, claimer, training


async def test_a_scheduler_passing_while_another_trains_skips_the_tick_without_waiting(
    conn: Connection, db_url: str
) -> None:
    job, first, training = await training_held(conn, db_url, "scheduler-a")
    second = await worker_like(db_url)
    try:
        started = asyncio.get_running_loop().time()
        skipped = await fire_if_due(session_of(second), job, "scheduler-b", NOW)
        waited_s = asyncio.get_running_loop().time() - started
        await asyncio.sleep(1.5)  # longer than the lock timeout, the training still held
        again = await fire_if_due(session_of(second), job, "scheduler-b", NOW)

        assert (skipped, again) == (None, None)
        assert waited_s < 0.5
        assert not training.done()
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MODEL_LOCK_KEY,))
        fired = await asyncio.wait_for(training, 30)
    finally:
        await first.close()
        await second.close()

    assert fired is not None
    assert fired["decision"] == "promoted"
    cur = await conn.execute("SELECT tick, trigger FROM model_audit")
    assert await cur.fetchall() == [{"tick": MONDAY_4AM, "trigger": "schedule"}]
    cur = await conn.execute("SELECT fired_by FROM aoer_cron_ticks WHERE name = %s", (MODEL_TICK,))
    assert await cur.fetchall() == [{"fired_by": "scheduler-a"}]


async def test_a_scheduler_that_dies_while_training_leaves_the_tick_to_fire_again(
    conn: Connection, db_url: str
) -> None:
    job, dying, training = await training_held(conn, db_url, "dies")
    cur = await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    assert len(await cur.fetchall()) == 1
    await conn.execute("SELECT pg_advisory_unlock(%s)", (MODEL_LOCK_KEY,))
    try:
        with contextlib.suppress(Exception):  # its connection was killed under it
            await asyncio.wait_for(training, 10)
    finally:
        await dying.close()

    survivor = await worker_like(db_url)
    try:
        fired = await fire_if_due(session_of(survivor), job, "survivor", NOW)
    finally:
        await survivor.close()

    assert fired is not None
    assert fired["decision"] == "promoted"
    cur = await conn.execute("SELECT fired_by FROM aoer_cron_ticks WHERE name = %s", (MODEL_TICK,))
    assert await cur.fetchall() == [{"fired_by": "survivor"}]


async def test_next_week_trains_again_and_keeps_a_champion_it_cannot_beat(
    conn: Connection,
) -> None:
    await seed(conn, outcome="linear")
    job = weekly_training()
    assert (await fire_if_due(session_of(conn), job, "w", MONDAY_4AM))["decision"] == "promoted"  # type: ignore[index]

    result = await fire_if_due(session_of(conn), job, "w", MONDAY_4AM + timedelta(weeks=1))

    # Same data, so v3 matches v2: not clearly better, recorded and retired.
    assert result is not None
    assert result["decision"] == "rejected"
    cur = await conn.execute("SELECT version, status FROM model_weights ORDER BY version")
    assert await cur.fetchall() == [
        {"version": "v1", "status": "retired"},
        {"version": "v2", "status": "champion"},
        {"version": "v3", "status": "retired"},
    ]
