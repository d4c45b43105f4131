"""Queue wake-ups (issue 16): an enqueue in a transaction of its own asks the store's Waker
for a NOTIFY after it committed, and enqueues committing together share one; an urgent
enqueue, or one inside a caller's transaction, still NOTIFYs with its commit."""

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

import pytest
from psycopg import pq

from aoer.constants import QUEUE_CHANNEL
from aoer.db.pool import Connection, connect
from aoer.store import Store
from tests.conftest import MakeTenant, eventually


@dataclass
class Listener:
    """A connection LISTENing on the queue's channel and the payloads it heard."""

    conn: Connection
    received: list[str]

    async def poll(self) -> list[str]:
        await self.conn.execute("SELECT 1")  # delivers notifications received meanwhile
        return self.received


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[Listener]:
    conn = await connect(db_url)
    heard = Listener(conn, [])
    conn.add_notify_handler(lambda n: heard.received.append(n.payload))
    await conn.execute(f"LISTEN {QUEUE_CHANNEL}")
    try:
        yield heard
    finally:
        await conn.close()


@dataclass
class RoundTrips:
    count: int = 0


@contextmanager
def round_trips(conn: Connection) -> Iterator[RoundTrips]:
    """Count the round trips `conn` makes in the block (libpq's protocol trace, written out
    when the trace ends: one ReadyForQuery a round trip)."""
    counted = RoundTrips()
    with tempfile.TemporaryFile(mode="w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield counted
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        counted.count = sum("\tReadyForQuery" in line for line in trace)


async def test_an_enqueue_outside_a_transaction_is_one_round_trip_urgent_with_its_notify(
    listener: Listener, store: Store, make_tenant: MakeTenant
) -> None:
    urgent, medium = await make_tenant("u"), await make_tenant("m")
    assert store.waker is not None
    async with store.session() as session:
        with round_trips(session.conn) as first:
            [job] = await session.jobs.enqueue([urgent], "urgent")
        assert await listener.poll() == ["urgent"]  # sent by the enqueue's own statement
        assert store.waker.sent == 0
        with round_trips(session.conn) as more:
            [again] = await session.jobs.enqueue([urgent], "urgent")  # changes nothing
            [other] = await session.jobs.enqueue([medium], "medium")
    assert (first.count, more.count) == (1, 2)
    assert (job.tenant_id, job.priority, job.coalesced) == (urgent, "urgent", False)
    assert (again.id, again.coalesced, other.tenant_id) == (job.id, True, medium)
    await store.waker.flush()
    # None for the enqueue that wrote nothing.
    assert await listener.poll() == ["urgent", "medium"]


async def test_an_enqueue_wakes_the_workers_after_its_commit(
    listener: Listener, store: Store, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    async with store.session() as session:
        [job] = await session.jobs.enqueue([tenant], "medium")
    assert job.tenant_id == tenant

    async def woken() -> bool:
        return await listener.poll() == ["medium"]

    await eventually(woken, "the coalesced NOTIFY")
    assert store.waker is not None
    await store.waker.flush()  # delivered as it committed, maybe before `sent` counted it
    assert store.waker.sent == 1


async def test_enqueues_committing_together_share_notifications(
    listener: Listener, store: Store, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(8)]
    assert store.waker is not None

    async def enqueue(tenant: UUID) -> None:
        for _ in range(5):
            async with store.session() as session:
                await session.jobs.enqueue([tenant], "low")

    await asyncio.gather(*(enqueue(t) for t in tenants))
    await store.waker.flush()
    received = await listener.poll()
    assert 1 <= store.waker.sent < 40, "fewer NOTIFYs than the 40 enqueues"
    assert len(received) == store.waker.sent


async def test_urgent_and_in_transaction_enqueues_notify_with_their_commit(
    listener: Listener, store: Store, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("a"), await make_tenant("b")
    assert store.waker is not None
    async with store.session() as session:
        await session.jobs.enqueue([a], "urgent")
        async with session.transaction():
            await session.jobs.enqueue([b], "low")
    assert await listener.poll() == ["urgent", "low"]
    assert store.waker.sent == 0
