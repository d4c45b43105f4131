"""The worker loop in-process: drain mode, NOTIFY wake-up, the contract's log lines, stopping."""

import asyncio
import logging

import pytest

from aoer import queue
from aoer.bootstrap.worker import build_worker
from aoer.config import Settings
from aoer.constants import RECLAIM_GRACE_S
from aoer.db.pool import Connection, Pool
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
