"""Availability under hung workers, lock waits, dropped connections (issue 11, items 1-5):
nobody waits long on a row another transaction holds, a hung transaction is ended by the
server, a passing database error spends no attempt, and a lease is called lost only when
another worker took it."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from uuid import UUID

import psycopg
import pytest

from aoer import queue
from aoer.bootstrap import LIMITS, ProcessKind, open_services
from aoer.bootstrap.worker import build_worker
from aoer.config import Settings
from aoer.db.pool import Connection, SessionLimits, connect, open_pool
from aoer.errors import TransientDatabaseError
from tests.conftest import AddSignals, MakeTenant, eventually, session_of

SIGNALS = [{"days_ago": 1, "aeo": "40", "geo": "40", "ugc": "40"}]
PROMPT_S = 5.0  # "promptly": far above the 1-2 s bounds, far below a hang


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"AOER_RUN_CRON": False, "AOER_LEASE_SECONDS": 30}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def holder(db_url: str) -> AsyncIterator[Connection]:
    """A second connection that holds locks in an open transaction, like a hung worker."""
    conn = await connect(db_url, autocommit=False)
    yield conn
    await conn.close()


async def lock_queued_job(holder: Connection, tenant: UUID) -> None:
    """Claim-in-progress: the tenant's waiting job updated but not committed."""
    await holder.execute(
        "UPDATE aoer_queue SET status = 'processing', locked_by = 'hung',"
        " lease_expires_at = now() + interval '30 seconds'"
        " WHERE tenant_id = %s AND status = 'queued'",
        (tenant,),
    )


async def test_the_cron_tick_never_waits_on_a_job_a_hung_worker_holds(
    conn: Connection, holder: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(4)]
    await queue.enqueue_many(session_of(conn), tenants[:2])
    await lock_queued_job(holder, tenants[0])
    queued = await asyncio.wait_for(queue.trigger_cron(session_of(conn)), PROMPT_S)
    assert queued == 3, "every tenant but the one whose job is held"
    cur = await conn.execute(
        "SELECT tenant_id, priority FROM aoer_queue WHERE status = 'queued' ORDER BY tenant_id"
    )
    assert {r["tenant_id"] for r in await cur.fetchall()} == set(tenants)
    await holder.rollback()


async def test_an_api_enqueue_waits_less_than_a_second_on_a_held_job(
    db_url: str, conn: Connection, holder: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    await lock_queued_job(holder, tenant)
    async with open_services(settings(), kind=ProcessKind.API, database_url=db_url) as api:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransientDatabaseError, match="lock timeout"):
            async with api.store.session() as session:
                await asyncio.wait_for(queue.enqueue(session, tenant, "urgent"), PROMPT_S)
        waited = asyncio.get_running_loop().time() - started
    assert waited < PROMPT_S, "refused after the lock timeout, not left hanging"
    assert LIMITS[ProcessKind.API].lock_timeout_ms <= 1000
    await holder.rollback()


async def test_each_process_kind_gets_its_server_side_limits(db_url: str) -> None:
    for kind in ProcessKind:
        async with (
            open_services(settings(), kind=kind, database_url=db_url) as services,
            services.store.session() as session,
        ):
            cur = await session.conn.execute(
                "SELECT current_setting('lock_timeout') AS lock,"
                " current_setting('idle_in_transaction_session_timeout') AS idle,"
                " current_setting('statement_timeout') AS stmt"
            )
            row = await cur.fetchone()
        limits = LIMITS[kind]
        assert row is not None
        shown = {k: str(v) for k, v in row.items()}
        assert shown == {
            "lock": _pg_ms(limits.lock_timeout_ms),
            "idle": _pg_ms(limits.idle_in_transaction_ms),
            "stmt": _pg_ms(limits.statement_timeout_ms),
        }, kind
    assert LIMITS[ProcessKind.WORKER].idle_in_transaction_ms <= 5_000


def _pg_ms(ms: int) -> str:
    """How PostgreSQL shows a duration setting given in milliseconds."""
    if ms == 0:
        return "0"
    if ms % 60_000 == 0:
        return f"{ms // 60_000}min"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


async def test_the_server_ends_a_hung_transaction_and_frees_its_rows(
    db_url: str, conn: Connection, make_tenant: MakeTenant
) -> None:
    """A worker frozen inside its transaction (SIGSTOP) holds row locks until the server
    ends that transaction; then the rows are free again."""
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    limits = SessionLimits(idle_in_transaction_ms=300)
    async with open_pool(db_url, max_size=1, limits=limits) as pool:
        frozen = await pool.getconn()
        await frozen.execute("BEGIN")
        await frozen.execute("SELECT id FROM aoer_queue WHERE tenant_id = %s FOR UPDATE", (tenant,))

        async def row_free() -> bool:
            cur = await conn.execute(
                "SELECT id FROM aoer_queue WHERE tenant_id = %s FOR UPDATE SKIP LOCKED",
                (tenant,),
            )
            return len(await cur.fetchall()) == 1

        assert not await row_free()
        await eventually(row_free, "the server ended the idle transaction", PROMPT_S)
        with contextlib.suppress(psycopg.OperationalError):  # the server closed it
            await pool.putconn(frozen)


async def test_renewal_never_waits_on_the_workers_own_batch(
    conn: Connection, holder: Connection, make_tenant: MakeTenant
) -> None:
    """The batch holds its rows (completing them); renewal skips them, reports them still
    held, and renews the others — no lock wait, hence no deadlock."""
    tenants = [await make_tenant(f"t{i}") for i in range(4)]
    await queue.enqueue_many(session_of(conn), tenants)
    jobs = await session_of(conn).jobs.claim("w1", 10)
    busy = sorted(j.id for j in jobs)[:2]
    await holder.execute(
        "UPDATE aoer_queue SET updated_at = now() WHERE id = ANY (%s)", (busy,)
    )  # the batch's open transaction
    checks = await asyncio.wait_for(
        session_of(conn).jobs.renew("w1", [j.id for j in jobs]), PROMPT_S
    )
    by_id = {c.id: c for c in checks}
    assert {i for i, c in by_id.items() if c.renewed} == {j.id for j in jobs} - set(busy)
    assert not any(c.lost for c in checks)
    await holder.rollback()


async def test_a_lease_is_lost_only_when_another_worker_took_the_job(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(3)]
    for t in tenants:
        await add_signals(t, SIGNALS)
    await queue.enqueue_many(session_of(conn), tenants)
    jobs = await session_of(conn).jobs.claim("w1", 10)
    done, taken, kept = jobs
    await session_of(conn).jobs.complete("w1", [done.id])  # finished by this worker
    await conn.execute(  # taken back after its lease expired
        "UPDATE aoer_queue SET status = 'queued', locked_by = NULL, lease_expires_at = NULL,"
        " error_message = 'lease expired: worker w1 stopped renewing it' WHERE id = %s",
        (taken.id,),
    )
    checks = {c.id: c for c in await session_of(conn).jobs.renew("w1", [j.id for j in jobs])}
    assert (checks[done.id].renewed, checks[done.id].lost) == (False, False)
    assert (checks[taken.id].renewed, checks[taken.id].lost) == (False, True)
    assert (checks[kept.id].renewed, checks[kept.id].lost) == (True, False)


async def test_a_dropped_connection_mid_batch_spends_no_attempt(
    db_url: str,
    conn: Connection,
    holder: Connection,
    make_tenant: MakeTenant,
    add_signals: AddSignals,
) -> None:
    """The batch's connection is killed while it waits (a restart, a network cut): the
    worker retries the batch on a fresh connection; the job completes with no failed
    attempt recorded."""
    tenant = await make_tenant()
    await add_signals(tenant, SIGNALS)
    await conn.execute(
        "INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk, metrics)"
        " VALUES (%s, 1, 1, '{}')",
        (tenant,),
    )
    await queue.enqueue(session_of(conn), tenant)
    await holder.execute("SELECT 1 FROM aoer_summary WHERE tenant_id = %s FOR UPDATE", (tenant,))
    async with open_services(settings(), kind=ProcessKind.WORKER, database_url=db_url) as svc:
        worker = build_worker(svc, drain=True)
        running = asyncio.create_task(worker.run())

        async def batch_waiting() -> bool:
            cur = await conn.execute(
                # The only lock waiter in this test's own database is the batch.
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            row = await cur.fetchone()
            return bool(row and row["n"])

        await eventually(batch_waiting, "the batch waits on the held summary row")
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        await holder.rollback()
        stats = await asyncio.wait_for(running, 30)
    assert stats.completed == 1
    cur = await conn.execute("SELECT status, retry_count FROM aoer_queue")
    assert await cur.fetchall() == [{"status": "completed", "retry_count": 0}]
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_failures")
    assert await cur.fetchone() == {"n": 0}


async def test_released_jobs_go_back_to_the_queue_without_an_attempt(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(2)]
    await queue.enqueue_many(session_of(conn), tenants)
    jobs = await session_of(conn).jobs.claim("w1", 10)
    assert await session_of(conn).jobs.release("w1", [j.id for j in jobs]) == (2, 0)
    cur = await conn.execute("SELECT DISTINCT status, retry_count, locked_by FROM aoer_queue")
    assert await cur.fetchall() == [{"status": "queued", "retry_count": 0, "locked_by": None}]


async def test_a_released_job_whose_tenant_waits_again_ends_naming_why(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    """One waiting job a tenant: a held job whose tenant was queued again meanwhile cannot
    go back. Left to its lease, it ended "lease expired: worker ... stopped renewing it", an
    attempt counted against a live worker; now it ends at once, no attempt spent."""
    tenant = await make_tenant()
    await queue.enqueue_many(session_of(conn), [tenant])
    [job] = await session_of(conn).jobs.claim("w1", 10)
    waiting = await queue.enqueue(session_of(conn), tenant)
    done = await session_of(conn).jobs.release("w1", [job.id], "lock timeout (after 9 attempts)")
    assert done == (0, 1)
    cur = await conn.execute(
        "SELECT status, retry_count, error_message FROM aoer_queue WHERE id = %s", (job.id,)
    )
    assert await cur.fetchone() == {
        "status": "failed",
        "retry_count": 0,
        "error_message": "lock timeout (after 9 attempts) (released: its tenant's waiting job"
        " carries the recompute)",
    }
    cur = await conn.execute("SELECT id, status FROM aoer_queue WHERE id <> %s", (job.id,))
    assert await cur.fetchall() == [{"id": waiting.id, "status": "queued"}]
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_failures")
    assert await cur.fetchone() == {"n": 0}


async def test_lease_keeper_renews_around_its_own_busy_batch_and_logs_no_loss(
    db_url: str,
    conn: Connection,
    holder: Connection,
    make_tenant: MakeTenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While this worker's own batch holds some of its rows, the lease keeper keeps renewing
    the others (it never waits on the batch) and logs no lost lease."""
    tenants = [await make_tenant(f"t{i}") for i in range(4)]
    await queue.enqueue_many(session_of(conn), tenants)
    caplog.set_level(logging.WARNING)
    async with open_services(
        settings(AOER_LEASE_SECONDS=0.6), kind=ProcessKind.WORKER, database_url=db_url
    ) as svc:
        worker = build_worker(svc)
        async with svc.store.session() as session:
            claimed = await session.jobs.claim(worker.worker_id)
        for job in claimed:
            worker._in_hand[job.id] = job  # a claimed batch in hand
        busy, free = [j.id for j in claimed[:2]], [j.id for j in claimed[2:]]
        await holder.execute(
            "UPDATE aoer_queue SET updated_at = now() WHERE id = ANY (%s)", (busy,)
        )
        cur = await conn.execute("SELECT max(lease_expires_at) AS t FROM aoer_queue")
        first = await cur.fetchone()
        assert first is not None
        keeper = asyncio.create_task(worker._keep_leases())

        async def renewed_twice() -> bool:
            cur = await conn.execute(
                "SELECT min(lease_expires_at) > %s + interval '0.3 seconds' AS ok"
                " FROM aoer_queue WHERE id = ANY (%s)",
                (first["t"], free),
            )
            row = await cur.fetchone()
            return bool(row and row["ok"])

        try:
            await eventually(renewed_twice, "the free jobs' leases were renewed", PROMPT_S)
        finally:
            keeper.cancel()
            await holder.rollback()
    assert "lost the lease" not in caplog.text
