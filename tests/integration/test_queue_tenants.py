"""A job's tenant (migration 0024): checked once per statement instead of by a foreign key
per row, and a deleted tenant leaves no job behind, even when it races an enqueue or a tick."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from aoer import queue
from aoer.db.pool import Connection, connect
from aoer.db.queries import query
from tests.conftest import MakeTenant, lock_waits, session_of


async def jobs_of(conn: Connection, tenant: UUID) -> list[dict[str, Any]]:
    cur = await conn.execute("SELECT id, status FROM aoer_queue WHERE tenant_id = %s", (tenant,))
    return await cur.fetchall()


async def test_a_job_for_an_unknown_tenant_is_refused_as_the_foreign_key_did(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    known, unknown = await make_tenant(), uuid4()
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
        await conn.execute("INSERT INTO aoer_queue (tenant_id) VALUES (%s), (%s)", (known, unknown))
    diag = refused.value.diag
    assert diag.constraint_name == "aoer_queue_tenant_id_fkey"
    assert diag.table_name == "aoer_queue"
    assert diag.message_detail == (
        f'Key (tenant_id)=({unknown}) is not present in table "tenants".'
    )
    assert await jobs_of(conn, known) == [], "nothing of the statement is written"


async def test_a_tick_chunk_checks_its_tenants_once_not_once_per_job(conn: Connection) -> None:
    """The foreign key ran a query and locked the tenant's row for each job: a third of every
    tick chunk. The chunk now fires one statement trigger, whatever its size."""
    await conn.execute("INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, 300) g")
    params = {"priority": "low", "max_retries": 3, "limit": 300, "first": True}
    params["after"] = "00000000-0000-0000-0000-000000000000"
    async with conn.transaction(force_rollback=True):
        cur = await conn.execute(
            b"EXPLAIN (ANALYZE, FORMAT JSON) " + query("enqueue_active_chunk").encode(), params
        )
        row = await cur.fetchone()
    assert row is not None
    [plan] = row["QUERY PLAN"]
    fired = {t["Trigger Name"]: t["Calls"] for t in plan.get("Triggers", [])}
    assert fired == {"aoer_queue_tenants_exist": 1}, json.dumps(plan["Triggers"])


async def test_a_job_moved_to_an_unknown_tenant_is_refused_and_to_a_known_one_allowed(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    first, second = await make_tenant(), await make_tenant()
    job = await queue.enqueue(session_of(conn), first)
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="aoer_queue_tenant_id_fkey"):
        await conn.execute("UPDATE aoer_queue SET tenant_id = %s", (uuid4(),))
    await conn.execute("UPDATE aoer_queue SET tenant_id = %s", (second,))
    assert [r["id"] for r in await jobs_of(conn, second)] == [job.id]


async def locks_and_updates(conn: Connection, relation: str, since: str) -> tuple[int, int]:
    """The row locks and the row updates written to the WAL for `relation` since the LSN
    `since` (pg_walinspect)."""
    cur = await conn.execute(
        """SELECT count(*) FILTER (WHERE w.record_type = 'LOCK') AS locks,
                  count(*) FILTER (WHERE w.record_type IN ('UPDATE', 'HOT_UPDATE')) AS updates
           FROM pg_get_wal_records_info(%s::pg_lsn, pg_current_wal_flush_lsn()) w
           WHERE w.resource_manager = 'Heap'
             AND w.block_ref LIKE format('%%%% rel %%s/%%s/%%s %%%%',
                 (SELECT oid FROM pg_tablespace WHERE spcname = 'pg_default'),
                 (SELECT oid FROM pg_database WHERE datname = current_database()),
                 pg_relation_filenode(%s::regclass))""",
        (since, relation),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["locks"]), int(row["updates"])


async def wal_position(conn: Connection) -> str:
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    cur = await conn.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn")
    row = await cur.fetchone()
    assert row is not None
    return str(row["lsn"])


async def test_giving_jobs_back_locks_no_row_for_the_tenant_check(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    """PostgreSQL locks every row an UPDATE changes before it looks at a BEFORE UPDATE row
    trigger's columns: 0024's check of a moved job's tenant, which never fires for the
    queue's own updates, wrote a row lock a job into every update that had not locked its
    rows already (here `release_jobs`; the claim and the completion lock theirs first).
    Migration 0025 fires it AFTER the row is written, which takes no lock."""
    tenants = [await make_tenant() for _ in range(6)]
    session = session_of(conn, lease_s=30.0)
    await session.jobs.enqueue(tenants, "low")
    claimed = await session.jobs.claim("w1", 10)
    start = await wal_position(conn)
    assert await session.jobs.release("w1", [job.id for job in claimed]) == (6, 0)
    assert await locks_and_updates(conn, "aoer_queue", start) == (0, 6)


async def test_updating_tenants_locks_no_row_for_the_id_check(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    for _ in range(6):
        await make_tenant()
    start = await wal_position(conn)
    await conn.execute("UPDATE tenants SET name = name || ' Motors'")
    assert await locks_and_updates(conn, "tenants", start) == (0, 6)


async def test_a_tenants_id_cannot_change_while_it_has_jobs(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still referenced"):
        await conn.execute("UPDATE tenants SET id = %s WHERE id = %s", (uuid4(), tenant))


async def test_deleting_tenants_deletes_their_jobs_in_every_state(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    gone, kept = await make_tenant(), await make_tenant()
    session = session_of(conn, lease_s=30.0)
    await queue.enqueue(session, gone, "low")
    [claimed] = await session.jobs.claim("test-worker", 10)
    await queue.enqueue(session, gone, "high")  # a second job while the first is in flight
    await queue.enqueue(session, kept)
    assert claimed.tenant_id == gone
    assert len(await jobs_of(conn, gone)) == 2
    await conn.execute("DELETE FROM tenants WHERE id = %s", (gone,))
    assert await jobs_of(conn, gone) == []
    assert len(await jobs_of(conn, kept)) == 1


async def test_truncating_tenants_empties_the_queue(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    await conn.execute("TRUNCATE tenants CASCADE")
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_queue")
    assert await cur.fetchone() == {"n": 0}


@pytest.fixture
async def two(db_url: str) -> AsyncIterator[tuple[Connection, Connection]]:
    """Two more sessions, for one to hold what the other waits for."""
    first, second = await connect(db_url), await connect(db_url)
    yield first, second
    await first.close()
    await second.close()


async def test_a_deletion_waits_for_an_uncommitted_tick_chunk_and_then_deletes_its_job(
    conn: Connection, two: tuple[Connection, Connection], make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    ticker, deleter = two
    async with ticker.transaction():
        chunk = await session_of(ticker).jobs.enqueue_active_chunk("low", None, 100)
        assert chunk.queued == 1
        deletion = asyncio.create_task(
            deleter.execute("DELETE FROM tenants WHERE id = %s", (tenant,))
        )
        await lock_waits(conn, 1)
        assert not deletion.done(), "the deletion must wait for the chunk's transaction"
    await deletion
    assert await jobs_of(conn, tenant) == [], "the chunk's job left an orphan"


async def test_an_enqueue_behind_an_uncommitted_deletion_queues_nothing(
    conn: Connection, two: tuple[Connection, Connection], make_tenant: MakeTenant
) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    deleter, enqueuer = two
    async with deleter.transaction():
        await deleter.execute("DELETE FROM tenants WHERE id = %s", (tenant,))
        # Both paths that write jobs: the API's enqueue and the tick's chunk.
        enqueue = asyncio.create_task(session_of(enqueuer).jobs.enqueue([tenant, other], "high"))
        await lock_waits(conn, 1)
        assert not enqueue.done(), "the enqueue must wait for the deletion"
    jobs = await enqueue
    assert [j.tenant_id for j in jobs] == [other]
    chunk = await session_of(enqueuer).jobs.enqueue_active_chunk("low", None, 100)
    assert chunk.tenants == 1
    assert await jobs_of(conn, tenant) == [], "a job was queued for a deleted tenant"


async def test_the_old_systems_enqueue_function_behind_a_deletion_names_the_tenant_unknown(
    conn: Connection, two: tuple[Connection, Connection], make_tenant: MakeTenant
) -> None:
    """`queue_tenant_recompute` reads the tenant, then inserts: the insert, held until the
    deletion commits, is checked against `tenants` as it is then (DESIGN §17)."""
    tenant = await make_tenant()
    deleter, caller = two
    async with deleter.transaction():
        await deleter.execute("LOCK TABLE aoer_queue IN SHARE ROW EXCLUSIVE MODE")
        call = asyncio.create_task(
            caller.execute("SELECT queue_tenant_recompute(%s, 'high')", (tenant,))
        )
        await lock_waits(conn, 1)
        assert not call.done()
        await deleter.execute("DELETE FROM tenants WHERE id = %s", (tenant,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="aoer_queue_tenant_id_fkey"):
        await call
    assert await jobs_of(conn, tenant) == []
