"""An urgent job at the head of the queue gets a small batch of its own, so it commits fast
even while a large backlog drains; without one, batches stay full."""

from aoer import queue
from aoer.db.pool import Connection
from tests.conftest import MakeTenant, session_of

WORKER = "test-worker"
LEASE_S = 30.0


async def _fleet(conn: Connection, n: int) -> None:
    await conn.execute(
        "INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, %s) g", (n,)
    )
    await session_of(conn).jobs.enqueue_all_active("low")


async def test_batch_led_by_an_urgent_job_is_capped(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    await _fleet(conn, 300)
    urgent = await make_tenant("waiting customer")
    await queue.enqueue(session_of(conn), urgent, "urgent")

    first = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 1000)
    assert urgent in {job.tenant_id for job in first}
    assert len(first) == 100, "the urgent job's batch is small"
    rest = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 1000)
    assert len(rest) == 201, "without an urgent job at the head, batches are full again"


async def test_backlog_without_urgent_jobs_is_claimed_in_full_batches(conn: Connection) -> None:
    await _fleet(conn, 300)
    assert len(await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 250)) == 250
