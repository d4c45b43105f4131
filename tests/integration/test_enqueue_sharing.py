"""`Enqueuer` (queue/coalescing.py): concurrent unscoped enqueues share one statement, each
request still gets its own job, and a statement's error reaches every request that shared it."""

import asyncio
from uuid import UUID, uuid4

import pytest

from aoer.constants import QUEUE_CHANNEL
from aoer.db.pool import Connection, SessionLimits, connect, open_pool
from aoer.errors import ConcurrencyConflict, DatabaseError
from aoer.queue import Enqueuer
from aoer.store import Store
from aoer.types import EnqueuedJob
from tests.conftest import MakeTenant, lock_waits


def enqueuer(store: Store) -> Enqueuer:
    return Enqueuer(lambda: store.session(timeout_s=5))


async def queued_jobs(conn: Connection) -> dict[UUID, tuple[UUID, str]]:
    cur = await conn.execute(
        "SELECT tenant_id, id, priority FROM aoer_queue WHERE status = 'queued'"
    )
    return {row["tenant_id"]: (row["id"], row["priority"]) for row in await cur.fetchall()}


async def test_fifty_concurrent_enqueues_are_one_statement_and_fifty_jobs(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant() for _ in range(50)]
    shared = enqueuer(store)
    jobs = await asyncio.gather(*(shared.enqueue(t, "high") for t in tenants))
    assert shared.statements == 1
    in_queue = await queued_jobs(conn)
    assert {job.tenant_id for job in jobs if job} == set(tenants) == set(in_queue)
    for tenant, job in zip(tenants, jobs, strict=True):
        assert job is not None
        assert job.tenant_id == tenant
        assert (job.id, job.priority, job.status, job.coalesced) == (
            in_queue[tenant][0],
            "high",
            "queued",
            False,
        )


async def test_requests_arriving_during_a_statement_share_the_next_one(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    first, *later = [await make_tenant() for _ in range(11)]
    shared = enqueuer(store)
    started = asyncio.create_task(shared.enqueue(first, "medium"))
    await asyncio.sleep(0)  # the first statement is on its way; the rest queue behind it
    jobs = await asyncio.gather(*(shared.enqueue(t, "medium") for t in later), started)
    assert shared.statements == 2
    assert all(job is not None for job in jobs)
    assert set(await queued_jobs(conn)) == {first, *later}


async def test_an_enqueue_right_after_an_answered_one_gets_its_own_statement(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    """One statement in flight at most (a pool of 2 or 3): the request answered by a
    statement enqueues again at once, before the event loop's next turn. The statement had
    ended but was still counted in flight, so the second request waited for nothing."""
    a, b = await make_tenant(), await make_tenant()
    shared = Enqueuer(lambda: store.session(timeout_s=5), max_in_flight=1)
    first = await shared.enqueue(a, "low")
    second = await asyncio.wait_for(shared.enqueue(b, "low"), 5)
    assert (first and first.tenant_id, second and second.tenant_id) == (a, b)
    assert shared.statements == 2
    assert set(await queued_jobs(conn)) == {a, b}


async def test_one_tenant_twice_in_a_statement_is_one_job_the_second_coalesced(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    shared = enqueuer(store)
    one, two, urgent = await asyncio.gather(
        shared.enqueue(tenant, "low"),
        shared.enqueue(tenant, "low"),
        shared.enqueue(tenant, "urgent"),
    )
    assert one is not None
    assert two is not None
    assert urgent is not None
    assert one.id == two.id == urgent.id
    assert (one.coalesced, two.coalesced) == (False, True)
    assert urgent.coalesced  # the urgent statement came second and raised the waiting job
    # Two statements, one per priority in the order asked; the job ends at the higher one.
    assert shared.statements == 2
    assert await queued_jobs(conn) == {tenant: (one.id, "urgent")}


async def test_unknown_and_inactive_tenants_are_answered_none_beside_the_others(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    known, inactive, unknown = await make_tenant(), await make_tenant(active=False), uuid4()
    shared = enqueuer(store)
    jobs = await asyncio.gather(*(shared.enqueue(t, "medium") for t in (known, inactive, unknown)))
    assert jobs[0] is not None
    assert jobs[0].tenant_id == known
    assert jobs[1:] == [None, None]
    assert set(await queued_jobs(conn)) == {known}


async def test_a_failed_statement_fails_every_request_that_shared_it(
    db_url: str, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant() for _ in range(5)]
    async with open_pool(db_url, max_size=1) as pool:
        closed = Store(pool, db_url)
    shared = enqueuer(closed)  # its pool is closed: the statement cannot run
    answers = await asyncio.gather(
        *(shared.enqueue(t, "medium") for t in tenants), return_exceptions=True
    )
    assert all(isinstance(a, DatabaseError) for a in answers), answers
    assert len({id(a) for a in answers}) == 1  # the one statement's error
    assert await queued_jobs(conn) == {}


async def test_a_cancelled_request_leaves_the_others_answered(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant() for _ in range(3)]
    shared = enqueuer(store)
    waiting = [asyncio.create_task(shared.enqueue(t, "medium")) for t in tenants]
    await asyncio.sleep(0)  # all three are waiting for the statement
    waiting[1].cancel()
    done = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert done[0] is not None
    assert done[2] is not None
    # A cancelled request's tenant may still be queued, as after a request cancelled once
    # its statement was sent: an extra recompute is harmless, a lost one is not.
    assert set(await queued_jobs(conn)) == set(tenants)


@pytest.mark.parametrize("priority", ["low", "urgent"])
async def test_a_shared_enqueue_wakes_the_workers(
    store: Store, make_tenant: MakeTenant, priority: str
) -> None:
    tenant = await make_tenant()
    async with store.listen(QUEUE_CHANNEL) as notifications:
        await enqueuer(store).enqueue(tenant, priority)  # type: ignore[arg-type]
        note = await asyncio.wait_for(anext(aiter(notifications)), 5)
    assert note.payload == priority


async def test_a_statement_waiting_on_a_claims_row_lock_holds_up_only_its_own_requests(
    store: Store, db_url: str, conn: Connection, make_tenant: MakeTenant
) -> None:
    """max_in_flight=2: while one statement waits on a row a claim has locked, another runs;
    with both waiting, later requests wait to share the next statement."""
    a, b, c, d, free = [await make_tenant() for _ in range(5)]
    await enqueuer(store).enqueue(a, "low")
    await enqueuer(store).enqueue(b, "low")
    shared = Enqueuer(lambda: store.session(timeout_s=5), max_in_flight=2)
    claim = await connect(db_url)
    lock = "SELECT id FROM aoer_queue WHERE tenant_id = %s FOR UPDATE"
    try:
        async with claim.transaction():  # what a claim in progress holds
            await claim.execute(lock, (a,))
            first = asyncio.create_task(shared.enqueue(a, "high"))
            await lock_waits(conn, 1)
            unlocked = await asyncio.wait_for(shared.enqueue(free, "high"), 5)
            assert unlocked is not None
            assert not first.done()
            await claim.execute(lock, (b,))
            second = asyncio.create_task(shared.enqueue(b, "high"))
            await lock_waits(conn, 2)
            later = [asyncio.create_task(shared.enqueue(t, "high")) for t in (c, d)]
            # Nothing to wait for: a third statement, were it allowed, would have c and d
            # queued well within this (neither is locked).
            await asyncio.sleep(0.2)
            assert not any(task.done() for task in (first, second, *later))
            assert shared.statements == 1
        jobs = await asyncio.wait_for(asyncio.gather(first, second, *later), 10)
    finally:
        await claim.close()
    assert [job.tenant_id if job else None for job in jobs] == [a, b, c, d]
    assert [job.coalesced if job else None for job in jobs] == [True, True, False, False]
    assert shared.statements == 4  # free's, a's, b's, then c's and d's together


async def test_a_held_row_fails_only_its_own_request_when_the_lock_wait_runs_out(
    db_url: str, conn: Connection, make_tenant: MakeTenant
) -> None:
    """With the API's lock timeout, a statement that waits on a row a frozen worker holds is
    tried again tenant by tenant: the held tenant's request fails, the others are queued."""
    held, *free = [await make_tenant() for _ in range(3)]
    async with open_pool(db_url, max_size=2, limits=SessionLimits(lock_timeout_ms=200)) as pool:
        limited = Store(pool, db_url)
        await enqueuer(limited).enqueue(held, "low")
        holder = await connect(db_url)
        try:
            async with holder.transaction():  # a worker frozen mid-claim
                await holder.execute(
                    "SELECT id FROM aoer_queue WHERE tenant_id = %s FOR UPDATE", (held,)
                )
                shared = enqueuer(limited)
                answers = await asyncio.gather(
                    *(shared.enqueue(t, "high") for t in (held, *free)), return_exceptions=True
                )
        finally:
            await holder.close()
    assert isinstance(answers[0], ConcurrencyConflict)
    assert [a.tenant_id for a in answers[1:] if isinstance(a, EnqueuedJob)] == free
    assert shared.statements == 2  # the shared one failed; each free tenant's alone
    queued = await queued_jobs(conn)
    assert {t: p for t, (_, p) in queued.items()} == {held: "low", free[0]: "high", free[1]: "high"}
