"""The worker loop in-process: drain mode, NOTIFY wake-up, the contract's log lines, stopping."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from aoer import queue
from aoer.bootstrap.worker import build_worker
from aoer.config import Settings
from aoer.constants import RECLAIM_GRACE_S
from aoer.db.pool import Connection, Pool, connect
from aoer.errors import ConcurrencyConflict
from aoer.worker.loop import Worker, WorkerStats
from tests.conftest import AddSignals, MakeTenant, eventually, services_for, session_of

# Generous bounds so a loaded CI machine never flakes; the latency target lives in bench/.
LIVENESS_S = 20.0


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "AOER_BATCH_SIZE": 4,
        "AOER_LEASE_SECONDS": 3,
        "AOER_RUN_CRON": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_drain_processes_every_due_job_then_returns(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(10)]
    for t in tenants:
        await add_signals(t, [{"days_ago": 1, "aeo": "40", "geo": "40", "ugc": "40"}])
    await queue.enqueue_many(session_of(conn), tenants)
    stats = await asyncio.wait_for(
        build_worker(services_for(settings(), pool, db_url), drain=True).run(), LIVENESS_S
    )
    assert stats.completed == 10
    assert stats.batches == 3  # batch size 4
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_summary WHERE aoer_score = 40.00")
    assert (await cur.fetchone()) == {"n": 10}


async def test_worker_logs_the_contract_lines(
    db_url: str,
    pool: Pool,
    conn: Connection,
    make_tenant: MakeTenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await make_tenant()
    caplog.set_level(logging.INFO)
    await queue.enqueue(session_of(conn), tenant, "high")
    await build_worker(services_for(settings(), pool, db_url), drain=True).run()
    text = caplog.text
    assert "[AOER] AOER Orchestrator worker active" in text
    assert f"[AOER] Queued recompute for tenant {tenant} (priority: high)" in text
    assert f"[AOER] ✅ Completed recompute for tenant {tenant} (" in text


async def test_idle_worker_wakes_on_notify_and_stops_on_request(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    # The safety poll is set far beyond the wait below: only a NOTIFY can wake the worker.
    worker = build_worker(services_for(settings(AOER_POLL_SECONDS=600), pool, db_url))
    running = asyncio.create_task(worker.run())
    # Listening, and every slot asleep: from here on only a NOTIFY can wake it.
    await asyncio.wait_for(worker.listening.wait(), LIVENESS_S)
    await eventually(worker.idle.is_set, "the worker is idle", LIVENESS_S)
    assert worker.stats.notifications == 0
    await queue.enqueue(session_of(conn), tenant, "urgent")

    async def computed() -> bool:
        cur = await conn.execute("SELECT 1 FROM aoer_summary WHERE tenant_id = %s", (tenant,))
        return await cur.fetchone() is not None

    await eventually(computed, "the idle worker processed the urgent job", LIVENESS_S)
    assert worker.stats.notifications >= 1, "woken by the enqueue's NOTIFY"
    worker.stop()
    stats = await asyncio.wait_for(running, LIVENESS_S)
    assert stats.completed == 1


async def test_worker_takes_back_a_dead_workers_jobs(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    # Claimed by a worker that never comes back.
    await session_of(conn, lease_s=0.5).jobs.claim("dead", 10)

    async def lease_expired() -> bool:  # and its grace period over: others may take it back
        cur = await conn.execute(
            "SELECT bool_and(lease_expires_at < now() - make_interval(secs => %s)) AS x"
            " FROM aoer_queue",
            (RECLAIM_GRACE_S,),
        )
        row = await cur.fetchone()
        return bool(row and row["x"])

    await eventually(lease_expired, "the dead worker's lease expired")
    stats = await build_worker(services_for(settings(), pool, db_url), drain=True).run()
    assert stats.completed == 1
    cur = await conn.execute("SELECT status, retry_count FROM aoer_queue")
    assert await cur.fetchall() == [{"status": "completed", "retry_count": 1}]


async def _status(conn: Connection, tenant: object) -> str | None:
    cur = await conn.execute(
        "SELECT status FROM aoer_queue WHERE tenant_id = %s ORDER BY created_at DESC LIMIT 1",
        (tenant,),
    )
    row = await cur.fetchone()
    return None if row is None else str(row["status"])


def _reaches(conn: Connection, tenant: object, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _status(conn, tenant) == status

    return check


@contextlib.asynccontextmanager
async def _one_slot_stuck(
    db_url: str, pool: Pool, conn: Connection, busy: object, **overrides: object
) -> AsyncIterator[tuple[Worker, asyncio.Task[WorkerStats]]]:
    """A running worker with one regular slot, stuck in a batch that recomputes `busy`: a
    connection holds the lock on that tenant's summary, which aoer_store_scores takes for the
    summaries it replaces. The lock is released on leaving; the worker keeps running."""
    await session_of(conn).scores.recompute([busy])
    holder = await connect(db_url)
    await holder.execute("BEGIN")
    await holder.execute("SELECT 1 FROM aoer_summary WHERE tenant_id = %s FOR UPDATE", (busy,))
    worker = build_worker(
        services_for(settings(AOER_WORKER_CONCURRENCY=1, **overrides), pool, db_url)
    )
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.listening.wait(), LIVENESS_S)
        await queue.enqueue(session_of(conn), busy, "low")
        await eventually(
            _reaches(conn, busy, "processing"), "the only slot claimed the busy tenant", LIVENESS_S
        )
        yield worker, running
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()


async def test_urgent_lane_takes_an_urgent_job_while_every_slot_is_busy(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    busy, waiting, urgent = [await make_tenant(name) for name in ("busy", "waiting", "urgent")]
    for tenant in (busy, waiting, urgent):
        await add_signals(tenant, [{"days_ago": 1, "aeo": "40", "geo": "40", "ugc": "40"}])
    async with _one_slot_stuck(db_url, pool, conn, busy) as (worker, running):
        await queue.enqueue(session_of(conn), waiting, "high")
        await queue.enqueue(session_of(conn), urgent, "urgent")
        await eventually(
            _reaches(conn, urgent, "completed"),
            "the urgent lane completed the urgent job",
            LIVENESS_S,
        )
        # Meanwhile the regular slot is still stuck, and the lane took nothing below urgent.
        assert await _status(conn, busy) == "processing"
        assert await _status(conn, waiting) == "queued"

    async def all_done() -> bool:
        cur = await conn.execute("SELECT bool_and(status = 'completed') AS done FROM aoer_queue")
        return bool((await cur.fetchone() or {}).get("done"))

    await eventually(all_done, "the slot finished its batch and the high job", LIVENESS_S)
    worker.stop()
    stats = await asyncio.wait_for(running, LIVENESS_S)
    assert stats.completed == 3


async def test_without_the_urgent_lane_an_urgent_job_waits_for_a_free_slot(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant
) -> None:
    busy, urgent = await make_tenant("busy"), await make_tenant("urgent")
    lane_off = {"AOER_URGENT_LANE": False}
    async with _one_slot_stuck(db_url, pool, conn, busy, **lane_off) as (worker, running):
        await queue.enqueue(session_of(conn), urgent, "urgent")
        await asyncio.sleep(1.0)  # a window in which nothing may take the urgent job
        assert await _status(conn, urgent) == "queued"
    await eventually(
        _reaches(conn, urgent, "completed"), "the freed slot took the urgent job", LIVENESS_S
    )
    worker.stop()
    await asyncio.wait_for(running, LIVENESS_S)


async def test_a_batch_retry_after_a_lock_timeout_names_whose_row_and_who_holds_it(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """The worker's retry warning for a lock timeout said where PostgreSQL waited ("tuple
    (1,2) in relation aoer_summary"), which names neither the dealership nor the session
    holding it: an operator had to read pg_locks. It now names both."""
    tenant = await make_tenant("Granite State Subaru")
    await add_signals(tenant, [{"days_ago": 1, "aeo": "40", "geo": "40", "ugc": "40"}])
    await session_of(conn).scores.recompute([tenant])
    await queue.enqueue(session_of(conn), tenant)
    jobs = await session_of(conn, lease_s=30).jobs.claim("w-test", 10)
    holder = await connect(db_url)
    worker = build_worker(services_for(settings(), pool, db_url))
    try:
        await holder.execute("SET application_name = 'psql'")
        await holder.execute("BEGIN")
        await holder.execute(
            "SELECT 1 FROM aoer_summary WHERE tenant_id = %s FOR UPDATE", (tenant,)
        )
        # A second lock mode on the table (a row-exclusive one) is the same holder, once.
        await holder.execute("UPDATE aoer_summary SET tenant_id = tenant_id WHERE false")
        cur = await holder.execute("SELECT pg_backend_pid() AS pid")
        pid = (await cur.fetchone() or {})["pid"]
        await conn.execute("SET lock_timeout = '200ms'")
        with pytest.raises(ConcurrencyConflict) as raised:
            await queue.process_batch(session_of(conn), "w-test", jobs)
        waited = await worker._lock_wait(raised.value)
    finally:
        await holder.close()
    assert str(waited).startswith(
        f"waited on the aoer_summary row of Granite State Subaru ({tenant}), held by one of"
        f" (oldest transaction first): pid {pid} (psql, idle in transaction, transaction open"
    )
    assert str(waited).count(f"pid {pid} ") == 1, str(waited)
