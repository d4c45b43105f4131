"""The console's actions under Row Level Security: an organisation's scoped session (the org
claim of DESIGN §12) lists, retries and cancels its own tenants' jobs and sees no other's; a
tenant's scoped session sees only its own. Audit rows carry the tenant's organisation."""

from uuid import UUID

import pytest

from aoer import queue
from aoer.db.pool import Connection
from aoer.errors import UnknownJob
from aoer.queue import console
from aoer.store import Scope, Store
from aoer.store.console import JobFilter
from tests.conftest import MakeTenant, session_of

WORKER = "scope-test-worker"
ACTOR = console.Actor("org:test", "org")


async def failed_job(conn: Connection, tenant: UUID) -> UUID:
    session = session_of(conn, max_retries=1)
    await queue.enqueue_many(session, [tenant], "high")
    [job] = await session.jobs.claim(WORKER, 1)
    await queue.fail(session, WORKER, [(job, "boom")])
    return job.id


async def org_of(conn: Connection, name: str, *tenants: UUID) -> UUID:
    cur = await conn.execute("INSERT INTO organizations (name) VALUES (%s) RETURNING id", (name,))
    row = await cur.fetchone()
    assert row is not None
    org = row["id"]
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = ANY (%s)", (org, list(tenants)))
    return org  # type: ignore[no-any-return]


def org_scope(org: UUID) -> Scope:
    return Scope({"sub": f"org:{org}", "role": "org", "org_id": str(org)})


async def test_an_organisation_acts_on_its_own_tenants_jobs_only(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    mine, theirs = await make_tenant("Mine"), await make_tenant("Theirs")
    org = await org_of(conn, "Group A", mine)
    await org_of(conn, "Group B", theirs)
    my_job, their_job = await failed_job(conn, mine), await failed_job(conn, theirs)

    async with store.session(org_scope(org)) as session:
        listed = await session.console.jobs(JobFilter())
        assert [j.id for j in listed.rows] == [my_job]
        assert await session.console.job(their_job) is None
        with pytest.raises(UnknownJob):
            await console.retry(session, their_job, ACTOR)
        retried = await console.retry(session, my_job, ACTOR)
        assert not retried.coalesced
        await console.cancel(session, my_job, ACTOR)  # queued again, so it can be cancelled
        with pytest.raises(UnknownJob):
            await console.cancel(session, their_job, ACTOR)

    cur = await conn.execute("SELECT action, org_id, tenant_id FROM audit_log ORDER BY id")
    assert [(r["action"], r["org_id"], r["tenant_id"]) for r in await cur.fetchall()] == [
        ("job.retry", org, mine),
        ("job.cancel", org, mine),
    ]
    cur = await conn.execute("SELECT status FROM aoer_queue WHERE id = %s", (their_job,))
    assert [r["status"] for r in await cur.fetchall()] == ["failed"], "untouched"


async def test_a_tenant_scope_reads_its_own_jobs_and_the_queue_state(
    store: Store, conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("A"), await make_tenant("B")
    job_a, job_b = await failed_job(conn, a), await failed_job(conn, b)
    scope = Scope({"sub": f"tenant:{a}", "role": "tenant", "tenant_id": str(a)})
    async with store.session(scope) as session:
        assert [j.id for j in (await session.console.jobs(JobFilter())).rows] == [job_a]
        assert [a.attempt for a in await session.console.attempts(job_a)] == [1]
        assert await session.console.attempts(job_b) == []
        assert (await session.console.queue_state()).paused is False
