"""Batch slots against the database host's cores (worker/slots.py): the heartbeat counts the
live workers and tells whether the database shares the worker's host; a worker registering or
leaving tells the others; workers sharing the host's cores keep fewer slots busy, and a slot
set aside claims nothing; a setting given explicitly is kept."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from aoer import queue
from aoer.constants import QUEUE_CONTROL_CHANNEL, WORKER_STALE_S
from aoer.db.pool import Connection, Pool, connect
from aoer.store import Store
from aoer.store.console import Heartbeat
from aoer.worker.loop import Worker
from aoer.worker.slots import batch_slots
from tests.conftest import MakeTenant, eventually, services_for, session_of
from tests.integration.test_worker import LIVENESS_S, settings


@pytest.mark.parametrize(
    ("explicit", "here", "cores", "live", "slots"),
    [
        (False, True, 2, 1, 2),  # one worker on a two-core host: both slots
        (False, True, 2, 2, 1),  # two workers: one each, two batches on two cores
        (False, True, 2, 5, 1),  # never fewer than one
        (False, True, 8, 1, 2),  # never more than configured
        (False, True, 8, 3, 2),
        (False, False, 2, 4, 2),  # the database elsewhere: its cores are unknown
        (True, True, 2, 4, 2),  # AOER_WORKER_CONCURRENCY given: kept as it is
    ],
)
def test_batch_slots(explicit: bool, here: bool, cores: int, live: int, slots: int) -> None:
    found = batch_slots(2, explicit=explicit, database_here=here, cores=cores, live_workers=live)
    assert found == slots


async def beat(store: Store, worker_id: str) -> Heartbeat:
    async with store.session() as session:
        return await session.console.heartbeat(
            worker_id,
            host="h",
            pid=1,
            started_at=datetime.now(UTC),
            jobs_in_hand=0,
            stale_s=WORKER_STALE_S,
        )


async def test_the_heartbeat_counts_live_workers_and_announces_a_new_one(
    db_url: str, conn: Connection, store: Store
) -> None:
    listening = await connect(db_url)
    heard: list[str] = []
    listening.add_notify_handler(lambda n: heard.append(n.payload))
    await listening.execute(f"LISTEN {QUEUE_CONTROL_CHANNEL}")
    try:
        await conn.execute(
            "INSERT INTO aoer_workers (id, host, pid, started_at, last_heartbeat_at, jobs_in_hand)"
            " VALUES ('gone', 'h', 2, now(), now() - interval '1 hour', 0),"
            "        ('alive', 'h', 3, now(), now(), 0)"
        )
        first = await beat(store, "w1")
        again = await beat(store, "w1")
        await listening.execute("SELECT 1")
        assert heard == ["workers"], "only the registering beat tells the others"
        # Over TCP to 127.0.0.1 the database is on this host; the stale row does not count.
        assert (first.live_workers, first.database_here, first.announced) == (2, True, True)
        assert (again.live_workers, again.announced) == (2, False)
        async with store.session() as session:
            await session.console.worker_gone("w1")
        await listening.execute("SELECT 1")
        assert heard == ["workers", "workers"], "a clean exit tells the others"
    finally:
        await listening.close()


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.listening.wait(), LIVENESS_S)
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, LIVENESS_S)


async def test_workers_on_the_database_host_share_its_cores(store: Store) -> None:
    # The poll and the heartbeat (3 s) are the fallbacks; the NOTIFYs of a worker registering
    # and leaving are what resize the others, which `eventually` waits for.
    quiet = settings(AOER_POLL_SECONDS=30)
    async with running(Worker(quiet, store, cores=2)) as first:
        await eventually(lambda: first.active_slots == 2, "a lone worker keeps both slots")
        async with running(Worker(quiet, store, cores=2)) as second:
            await eventually(
                lambda: (first.active_slots, second.active_slots) == (1, 1),
                "two workers on two cores keep one slot each",
                LIVENESS_S,
            )
        await eventually(
            lambda: first.active_slots == 2, "the other left: both slots again", LIVENESS_S
        )


async def test_an_explicit_setting_is_kept(store: Store) -> None:
    given = settings(AOER_POLL_SECONDS=30, AOER_WORKER_CONCURRENCY=2)
    async with running(Worker(given, store, cores=1)) as worker:
        await eventually(lambda: worker.heartbeat is not None, "a heartbeat", LIVENESS_S)
        assert worker.heartbeat is not None
        assert worker.heartbeat.database_here
        assert worker.active_slots == 2


async def test_a_slot_set_aside_claims_nothing(
    db_url: str, pool: Pool, conn: Connection, make_tenant: MakeTenant
) -> None:
    batch = 4  # the store's policy
    one_core = services_for(settings(AOER_POLL_SECONDS=30, AOER_BATCH_SIZE=batch), pool, db_url)
    tenants = [await make_tenant(f"t{i}") for i in range(40)]
    async with running(Worker(one_core.settings, one_core.store, cores=1)) as worker:
        await eventually(lambda: worker.active_slots == 1, "one core: one slot", LIVENESS_S)
        await queue.enqueue_many(session_of(conn), tenants)  # wakes every slot

        async def most_in_hand() -> int:  # looked at on every turn of the event loop
            most = 0
            while worker.stats.completed < len(tenants):
                most = max(most, len(worker._in_hand))
                await asyncio.sleep(0)
            return most

        most = await asyncio.wait_for(most_in_hand(), LIVENESS_S)
        assert most == batch, "one batch in hand at a time"
