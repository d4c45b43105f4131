"""The pause switch in the worker: the claim statement reads the stored flag itself, so even a
worker that never heard the NOTIFY claims nothing while paused; a running worker hears a pause
and a resume at once, says so in its heartbeat row, and removes the row when it stops."""

import asyncio

from aoer import queue
from aoer.bootstrap.worker import build_worker
from aoer.db.pool import Connection, Pool
from aoer.queue import console
from aoer.store import Store
from tests.conftest import MakeTenant, eventually, services_for, session_of
from tests.integration.test_worker import LIVENESS_S, settings

ACTOR = console.Actor("test", "admin")


async def test_a_paused_flag_set_without_any_notification_still_stops_claims(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(3)]
    await queue.enqueue_many(session_of(conn), tenants)
    await conn.execute("UPDATE aoer_queue_state SET paused = true")  # no NOTIFY at all
    services = services_for(settings(), pool, db_url)
    stats = await asyncio.wait_for(build_worker(services, drain=True).run(), LIVENESS_S)
    assert stats.completed == 0
    await conn.execute("UPDATE aoer_queue_state SET paused = false")
    stats = await asyncio.wait_for(build_worker(services, drain=True).run(), LIVENESS_S)
    assert stats.completed == 3


async def test_a_running_worker_hears_pause_and_resume_and_leaves_no_row(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant, store: Store
) -> None:
    tenant = await make_tenant()
    worker = build_worker(services_for(settings(AOER_POLL_SECONDS=30), pool, db_url))
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.listening.wait(), LIVENESS_S)

        async def row_paused() -> object:
            cur = await conn.execute(
                "SELECT paused FROM aoer_workers WHERE id = %s", (worker.worker_id,)
            )
            found = await cur.fetchone()
            return None if found is None else found["paused"]

        async def registered() -> bool:
            return await row_paused() is False

        await eventually(registered, "the worker registered its heartbeat row", 5)
        async with store.session() as session:
            await console.set_paused(session, True, ACTOR)
        await eventually(lambda: worker.paused, "the worker heard the pause", 5)

        async def says_paused() -> bool:
            return await row_paused() is True

        await eventually(says_paused, "its heartbeat row says paused", 5)
        await queue.enqueue_many(session_of(conn), [tenant], "urgent")
        async with store.session() as session:
            await console.set_paused(session, False, ACTOR)

        async def completed() -> bool:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM aoer_queue WHERE status = 'completed'"
            )
            return (await cur.fetchone()) == {"n": 1}

        # The poll is 30 s: the resume's NOTIFY (were it lost, the next heartbeat) wakes it.
        await eventually(completed, "the job completed after the resume", 10)
    finally:
        worker.stop()
        await asyncio.wait_for(running, LIVENESS_S)
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_workers")
    assert (await cur.fetchone()) == {"n": 0}, "a clean exit removes the worker's row"
