"""Queue semantics (DESIGN §4) on a real PostgreSQL: enqueue, claim, complete, fail, leases."""

import random
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from aoer import queue
from aoer.db.pool import Connection, connect
from aoer.errors import ConcurrencyConflict, InactiveTenant, InvalidInput, UnknownTenant
from tests.conftest import AddSignals, MakeTenant, session_of

WORKER = "test-worker"
LEASE_S = 30.0


async def rows(conn: Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    return await cur.fetchall()


async def job_count(conn: Connection) -> int:
    return int((await rows(conn, "SELECT count(*) AS n FROM aoer_queue"))[0]["n"])


async def test_enqueue_creates_a_queued_job(conn: Connection, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    job = await queue.enqueue(session_of(conn), tenant, "high")
    assert (job.tenant_id, job.priority, job.status, job.coalesced) == (
        tenant,
        "high",
        "queued",
        False,
    )
    [row] = await rows(conn, "SELECT * FROM aoer_queue")
    assert row["id"] == job.id
    assert row["max_retries"] == 3
    assert row["retry_count"] == 0


async def test_enqueue_coalesces_and_raises_priority(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    first = await queue.enqueue(session_of(conn), tenant, "low")
    second = await queue.enqueue(session_of(conn), tenant, "urgent")
    third = await queue.enqueue(session_of(conn), tenant, "medium")
    assert second.id == first.id == third.id
    assert (second.coalesced, third.coalesced) == (True, True)
    assert second.priority == "urgent"
    assert third.priority == "urgent", "a lower priority never lowers a waiting job"
    assert await job_count(conn) == 1


async def test_coalescing_moves_scheduled_at_earlier(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    job = await queue.enqueue(session_of(conn), tenant)
    await conn.execute(
        "UPDATE aoer_queue SET scheduled_at = now() + interval '1 hour' WHERE id = %s", (job.id,)
    )
    await queue.enqueue(session_of(conn), tenant)
    [row] = await rows(conn, "SELECT scheduled_at <= now() AS due FROM aoer_queue")
    assert row["due"] is True


async def test_tenant_in_processing_gets_a_new_queued_job(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    first = await queue.enqueue(session_of(conn), tenant)
    [claimed] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    assert claimed.id == first.id
    second = await queue.enqueue(session_of(conn), tenant)
    assert second.id != first.id
    assert second.coalesced is False
    statuses = await rows(conn, "SELECT status FROM aoer_queue ORDER BY created_at")
    assert [r["status"] for r in statuses] == ["processing", "queued"]


async def version_of(conn: Connection, job_id: UUID) -> tuple[str, str, object]:
    """The row version of a job: a write of any kind gives it a new ctid and xmin."""
    [row] = await rows(
        conn, "SELECT ctid::text, xmin::text, updated_at FROM aoer_queue WHERE id = %s", job_id
    )
    return row["ctid"], row["xmin"], row["updated_at"]


async def test_an_enqueue_that_changes_nothing_writes_nothing(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    job = await queue.enqueue(session_of(conn), tenant, "high")
    before = await version_of(conn, job.id)
    for priority in ("high", "medium", "low"):
        again = await queue.enqueue(session_of(conn), tenant, priority)
        assert (again.id, again.priority, again.status, again.coalesced) == (
            job.id,
            "high",
            "queued",
            True,
        )
    assert await version_of(conn, job.id) == before
    raised = await queue.enqueue(session_of(conn), tenant, "urgent")
    assert (raised.id, raised.priority) == (job.id, "urgent")
    assert await version_of(conn, job.id) != before


async def test_an_enqueue_that_changes_nothing_does_not_wait_for_a_claim_taking_the_job(
    conn: Connection, db_url: str, make_tenant: MakeTenant
) -> None:
    """A claim holds the waiting job's row until it commits: an enqueue at that job's
    priority or lower is answered with that job at once (the tenant is recomputed by it,
    after this request); one that must raise the job's priority waits for the claim, and,
    the job being taken, queues a new one (DESIGN §4)."""
    tenant = await make_tenant()
    job = await queue.enqueue(session_of(conn), tenant, "medium")
    claimer = await connect(db_url, autocommit=False)
    try:
        await claimer.execute("SELECT 1")  # a transaction the claim's own is a savepoint of
        [claimed] = await session_of(claimer, lease_s=LEASE_S).jobs.claim(WORKER, 10)
        assert claimed.id == job.id  # claimed, not committed: its row is locked
        await conn.execute("SET lock_timeout = '500ms'")  # an enqueue that waits fails
        for priority in ("medium", "low"):
            same = await queue.enqueue(session_of(conn), tenant, priority)
            assert (same.id, same.coalesced) == (job.id, True)
        with pytest.raises(ConcurrencyConflict):  # a raise waits for the claim: here, in vain
            await queue.enqueue(session_of(conn), tenant, "urgent")
        await claimer.commit()
    finally:
        await claimer.close()
        await conn.execute("RESET lock_timeout")
    after = await queue.enqueue(session_of(conn), tenant, "urgent")
    assert after.id != job.id
    assert after.coalesced is False


@pytest.mark.parametrize(
    ("tenant_id", "priority", "error", "message"),
    [
        ("not-a-uuid", "high", InvalidInput, "malformed tenant id 'not-a-uuid'"),
        ("UNKNOWN", "high", UnknownTenant, "unknown tenant"),
        ("VALID", "asap", InvalidInput, "unknown priority 'asap'"),
    ],
)
async def test_bad_enqueue_is_refused_and_writes_nothing(
    conn: Connection,
    make_tenant: MakeTenant,
    tenant_id: str,
    priority: str,
    error: type[Exception],
    message: str,
) -> None:
    valid = await make_tenant()
    target = {"UNKNOWN": str(uuid4()), "VALID": str(valid)}.get(tenant_id, tenant_id)
    with pytest.raises(error, match=message):
        await queue.enqueue(session_of(conn), target, priority)
    assert await job_count(conn) == 0


async def test_inactive_tenant_is_refused(conn: Connection, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant(active=False)
    with pytest.raises(InactiveTenant, match="inactive"):
        await queue.enqueue(session_of(conn), tenant)
    assert await job_count(conn) == 0


async def test_claim_takes_priority_order_then_age(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    order = ["low", "medium", "urgent", "low", "high", "medium", "urgent"]
    tenants = [await make_tenant(f"t{i}") for i in range(len(order))]
    for i, (tenant, priority) in enumerate(zip(tenants, order, strict=True)):
        job = await queue.enqueue(session_of(conn), tenant, priority)
        # distinct ages: earlier index = older
        await conn.execute(
            "UPDATE aoer_queue SET scheduled_at = now() - make_interval(secs => %s) WHERE id = %s",
            (100 - i, job.id),
        )
    batches: list[set[UUID]] = []
    while batch := await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 2):
        batches.append({job.tenant_id for job in batch})
    rank = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
    expected = [tenants[i] for i in sorted(range(len(order)), key=lambda i: (rank[order[i]], i))]
    # Each batch of two takes the next two jobs in order; order inside a batch is free.
    assert batches == [set(expected[i : i + 2]) for i in range(0, len(expected), 2)]


async def test_claim_skips_jobs_not_yet_due(conn: Connection, make_tenant: MakeTenant) -> None:
    later, now = await make_tenant("later"), await make_tenant("now")
    job = await queue.enqueue(session_of(conn), later, "urgent")
    await conn.execute(
        "UPDATE aoer_queue SET scheduled_at = now() + interval '5 minutes' WHERE id = %s",
        (job.id,),
    )
    await queue.enqueue(session_of(conn), now, "low")
    claimed = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    assert [j.tenant_id for j in claimed] == [now]


async def test_concurrent_claims_never_share_a_job(
    db_url: str, conn: Connection, make_tenant: MakeTenant
) -> None:
    from aoer.db.pool import connect

    tenants = [await make_tenant(f"t{i}") for i in range(40)]
    await queue.enqueue_many(session_of(conn), tenants)
    other = await connect(db_url)
    try:
        async with conn.transaction(), other.transaction():
            # Both claims run while the other's transaction is still open.
            first = await session_of(conn, lease_s=LEASE_S).jobs.claim("a", 25)
            second = await session_of(other, lease_s=LEASE_S).jobs.claim("b", 25)
    finally:
        await other.close()
    assert len(first) == 25
    assert len(second) == 15
    assert not {j.id for j in first} & {j.id for j in second}


async def test_process_batch_completes_jobs_and_writes_summary_and_event(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(
        tenant, [{"days_ago": d, "aeo": "60", "geo": "70", "ugc": "80"} for d in range(5)]
    )
    job = await queue.enqueue(session_of(conn), tenant, "urgent")
    jobs = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    outcome = await queue.process_batch(session_of(conn), WORKER, jobs)
    assert [c.id for c in outcome.completed] == [job.id]
    assert str(outcome.completed[0].aoer_score) == "68.50"
    [summary] = await rows(conn, "SELECT aoer_score, visibility_risk FROM aoer_summary")
    assert (str(summary["aoer_score"]), str(summary["visibility_risk"])) == ("68.50", "0.20")
    [event] = await rows(conn, "SELECT event_type, event_data FROM metrics_events")
    assert event["event_type"] == "aoer_recompute"
    assert event["event_data"]["jobId"] == str(job.id)
    [state] = await rows(conn, "SELECT status, completed_at IS NOT NULL AS done FROM aoer_queue")
    assert (state["status"], state["done"]) == ("completed", True)


async def test_a_job_whose_lease_was_lost_is_not_completed_by_the_old_holder(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    jobs = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    await conn.execute("UPDATE aoer_queue SET locked_by = 'someone-else'")
    outcome = await queue.process_batch(session_of(conn), WORKER, jobs)
    assert outcome.completed == []
    assert await rows(conn, "SELECT 1 FROM metrics_events") == []


def test_backoff_doubles_from_60s_and_is_capped_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, base in [(1, 60), (2, 120), (3, 240), (4, 480), (7, 3600), (30, 3600)]:
        delays = [queue.backoff_s(attempt, rng) for _ in range(200)]
        assert min(delays) >= base
        assert max(delays) <= base * 1.25
        assert max(delays) - min(delays) > base * 0.1, "jitter spreads retries"


async def test_failed_attempt_is_recorded_and_retried_after_backoff(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    [job] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    [attempt] = await queue.fail(session_of(conn), WORKER, [(job, "boom")], random.Random(1))
    assert (attempt.status, attempt.retry_count) == ("queued", 1)
    [row] = await rows(
        conn,
        "SELECT extract(epoch FROM scheduled_at - now()) AS wait_s, locked_by FROM aoer_queue",
    )
    assert 55 <= row["wait_s"] <= 75 + 1
    assert row["locked_by"] is None
    [failure] = await rows(conn, "SELECT * FROM aoer_failures")
    assert (failure["error_message"], failure["retry_count"], failure["job_id"]) == (
        "boom",
        1,
        job.id,
    )
    assert failure["error_data"]["willRetry"] is True
    assert await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10) == [], (
        "not due before its backoff"
    )


async def test_job_fails_for_good_after_max_retries(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn, max_retries=3), tenant)
    for attempt in range(1, 4):
        await conn.execute("UPDATE aoer_queue SET scheduled_at = now() WHERE status = 'queued'")
        [job] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
        [result] = await queue.fail(session_of(conn), WORKER, [(job, f"error {attempt}")])
        assert result.retry_count == attempt
    assert result.status == "failed"
    [row] = await rows(conn, "SELECT status, error_message, completed_at FROM aoer_queue")
    assert (row["status"], row["error_message"]) == ("failed", "error 3")
    assert row["completed_at"] is not None
    failures = await rows(conn, "SELECT retry_count FROM aoer_failures ORDER BY retry_count")
    assert [f["retry_count"] for f in failures] == [1, 2, 3]
    status = (await session_of(conn).jobs.statuses([tenant]))[tenant]
    assert (status.pending, status.processing, status.failed) == (0, 0, 1)


async def test_retry_folds_into_a_waiting_job_of_the_same_tenant(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    [job] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    waiting = await queue.enqueue(session_of(conn), tenant)
    [attempt] = await queue.fail(session_of(conn), WORKER, [(job, "boom")])
    assert attempt.status == "failed"
    assert "retry carried by the waiting job" in attempt.error_message
    [row] = await rows(conn, "SELECT id FROM aoer_queue WHERE status = 'queued'")
    assert row["id"] == waiting.id


async def test_poison_tenant_does_not_fail_its_neighbours(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenants = [await make_tenant(f"t{i}") for i in range(9)]
    poison = tenants[4]
    for tenant in tenants:
        await add_signals(tenant, [{"days_ago": 0, "aeo": "50", "geo": "50", "ugc": "50"}])
    # A real database error for one tenant only: a trigger refusing its summary.
    await conn.execute(
        f"""
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.tenant_id = '{poison}' THEN RAISE EXCEPTION 'poisoned tenant'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON aoer_summary
            FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """  # type: ignore[arg-type]
    )
    await queue.enqueue_many(session_of(conn), tenants)
    jobs = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 100)
    outcome = await queue.process_batch(session_of(conn), WORKER, jobs)
    assert sorted(c.tenant_id for c in outcome.completed) == sorted(set(tenants) - {poison})
    assert [f.tenant_id for f in outcome.failed] == [poison]
    # What PostgreSQL said beyond its first line: where it came from, for the operator.
    assert outcome.failed[0].error_message == (
        "poisoned tenant (SQLSTATE P0001; CONTEXT: PL/pgSQL function refuse_poison() line 3 at"
        " RAISE)"
    )
    summaries = await rows(conn, "SELECT tenant_id FROM aoer_summary")
    assert len(summaries) == 8
    [failure] = await rows(conn, "SELECT tenant_id, error_message FROM aoer_failures")
    assert (failure["tenant_id"], failure["error_message"]) == (
        poison,
        outcome.failed[0].error_message,
    )
    states = await rows(conn, "SELECT status, count(*) AS n FROM aoer_queue GROUP BY 1 ORDER BY 1")
    assert {r["status"]: r["n"] for r in states} == {"completed": 8, "queued": 1}


async def test_a_tenant_whose_row_stays_locked_is_isolated_when_asked(
    conn: Connection, db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """A summary row an open transaction holds makes every try of the batch time out: no
    tenant's fault, so nothing is blamed and the whole batch waits. Asked to isolate
    conflicts (the worker does, after the same batch met them three times), the tenant they
    keep happening on stands alone and spends an attempt; its neighbours commit."""
    tenants = [await make_tenant(f"t{i}") for i in range(5)]
    stuck = tenants[3]
    for tenant in tenants:
        await add_signals(tenant, [{"days_ago": 0, "aeo": "50", "geo": "50", "ugc": "50"}])
    await queue.enqueue_many(session_of(conn), tenants)
    first = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 100)
    await queue.process_batch(session_of(conn), WORKER, first)  # their summaries exist
    await queue.enqueue_many(session_of(conn), tenants)
    jobs = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 100)
    [where] = await rows(conn, "SELECT ctid::text FROM aoer_summary WHERE tenant_id = %s", stuck)
    tuple_of_stuck = where["ctid"]
    holder = await connect(db_url)
    try:
        await holder.execute("SET application_name = 'psql'")
        await holder.execute("BEGIN")
        await holder.execute("SELECT 1 FROM aoer_summary WHERE tenant_id = %s FOR UPDATE", (stuck,))
        [pid] = await rows(holder, "SELECT pg_backend_pid() AS pid")
        await conn.execute("SET lock_timeout = '300ms'")
        with pytest.raises(ConcurrencyConflict, match="lock timeout"):
            await queue.process_batch(session_of(conn), WORKER, jobs)
        outcome = await queue.process_batch(session_of(conn), WORKER, jobs, isolate_conflicts=True)
    finally:
        await holder.close()
    assert sorted(c.tenant_id for c in outcome.completed) == sorted(set(tenants) - {stuck})
    [attempt] = outcome.failed
    assert (attempt.tenant_id, attempt.status, attempt.retry_count) == (stuck, "queued", 1)
    # The message names whose row it was (the sessions holding it go to the worker's log
    # only: an organisation reads its tenant's failures).
    assert attempt.error_message == (
        "canceling statement due to lock timeout (SQLSTATE 55P03; CONTEXT: while locking tuple"
        f' {tuple_of_stuck} in relation "aoer_summary"); waited on the aoer_summary row of t3'
        f" ({stuck}) (every time: isolated from its batch)"
    )
    assert f"pid {pid['pid']}" not in attempt.error_message
    [failure] = await rows(conn, "SELECT tenant_id FROM aoer_failures")
    assert failure["tenant_id"] == stuck


async def test_a_lock_on_the_whole_table_blames_no_tenant_of_a_small_batch(
    conn: Connection, db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """Isolation blames a tenant only when others of its batch commit: a batch of two whose
    every tenant times out on a table lock (a long DDL) spent an attempt each, and in the end
    failed them with alerts."""
    tenants = [await make_tenant(f"t{i}") for i in range(2)]
    for tenant in tenants:
        await add_signals(tenant, [{"days_ago": 0, "aeo": "50", "geo": "50", "ugc": "50"}])
    await queue.enqueue_many(session_of(conn), tenants)
    jobs = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 100)
    holder = await connect(db_url)
    try:
        await holder.execute("BEGIN")
        await holder.execute("LOCK TABLE aoer_summary IN EXCLUSIVE MODE")
        with pytest.raises(ConcurrencyConflict, match="lock timeout"):
            await queue.process_batch(session_of(conn), WORKER, jobs, isolate_conflicts=True)
    finally:
        await holder.close()
    assert await rows(conn, "SELECT tenant_id FROM aoer_failures") == []
    states = await rows(conn, "SELECT status, retry_count FROM aoer_queue")
    assert [(r["status"], r["retry_count"]) for r in states] == [("processing", 0)] * 2


async def test_a_job_alone_in_its_batch_that_keeps_conflicting_spends_an_attempt(
    conn: Connection, db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """A retry comes back alone in its batch: unblamed, it held a batch slot for
    AOER_CONNECT_TIMEOUT a round and ended as a lease expiry naming a live worker."""
    tenant = await make_tenant()
    await add_signals(tenant, [{"days_ago": 0, "aeo": "50", "geo": "50", "ugc": "50"}])
    await queue.enqueue_many(session_of(conn), [tenant])
    [first] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 1)
    await queue.process_batch(session_of(conn), WORKER, [first])  # its summary exists
    await queue.enqueue_many(session_of(conn), [tenant])
    jobs = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 1)
    holder = await connect(db_url)
    try:
        await holder.execute("BEGIN")
        await holder.execute(
            "SELECT 1 FROM aoer_summary WHERE tenant_id = %s FOR UPDATE", (tenant,)
        )
        outcome = await queue.process_batch(session_of(conn), WORKER, jobs, isolate_conflicts=True)
    finally:
        await holder.close()
    [attempt] = outcome.failed
    assert (attempt.tenant_id, attempt.status, attempt.retry_count) == (tenant, "queued", 1)
    assert "lock timeout" in attempt.error_message


async def test_expired_lease_is_taken_back_and_counts_as_an_attempt(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    [job] = await session_of(conn, lease_s=LEASE_S).jobs.claim("dead-worker", 10)
    assert await queue.reclaim_expired(session_of(conn)) == 0, "a live lease is left alone"
    await conn.execute("UPDATE aoer_queue SET lease_expires_at = now() - interval '1 minute'")
    assert await queue.reclaim_expired(session_of(conn)) == 1
    [row] = await rows(
        conn, "SELECT status, retry_count, locked_by, scheduled_at <= now() AS due FROM aoer_queue"
    )
    assert (row["status"], row["retry_count"], row["locked_by"], row["due"]) == (
        "queued",
        1,
        None,
        True,
    )
    [failure] = await rows(conn, "SELECT error_message, error_data FROM aoer_failures")
    assert "lease expired" in failure["error_message"]
    assert failure["error_data"]["workerId"] == "dead-worker"
    [again] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    assert again.id == job.id
    outcome = await queue.process_batch(session_of(conn), WORKER, [again])
    assert [c.id for c in outcome.completed] == [job.id]


async def test_a_live_workers_job_past_its_lease_is_left_to_it_until_it_goes_quiet(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    """A batch waiting on a row lock holds its jobs' rows, so its worker cannot renew their
    leases; taken back then, a healthy tenant lost an attempt to "lease expired". A job is
    taken back once its worker stops heartbeating, or when its lease is long past."""
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    await session_of(conn, lease_s=LEASE_S).jobs.claim("busy-worker", 10)
    await conn.execute(
        "INSERT INTO aoer_workers (id, host, pid) VALUES ('busy-worker', 'h', 1);"
        "UPDATE aoer_queue SET lease_expires_at = now() - interval '1 minute'"
    )
    assert await queue.reclaim_expired(session_of(conn)) == 0, "its worker still heartbeats"
    await conn.execute("UPDATE aoer_queue SET lease_expires_at = now() - interval '11 minutes'")
    assert await queue.reclaim_expired(session_of(conn)) == 1, "a lease long past: a hung batch"

    await queue.enqueue(session_of(conn), tenant)
    await session_of(conn, lease_s=LEASE_S).jobs.claim("busy-worker", 10)
    await conn.execute(
        "UPDATE aoer_queue SET lease_expires_at = now() - interval '1 minute'"
        " WHERE status = 'processing';"
        "UPDATE aoer_workers SET last_heartbeat_at = now() - interval '16 seconds'"
    )
    assert await queue.reclaim_expired(session_of(conn)) == 1, "its worker went quiet"


async def test_expired_lease_of_a_tenant_with_a_waiting_job_is_not_requeued_twice(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    await session_of(conn, lease_s=LEASE_S).jobs.claim("dead-worker", 10)
    waiting = await queue.enqueue(session_of(conn), tenant)
    await conn.execute(
        "UPDATE aoer_queue SET lease_expires_at = now() - interval '1 minute'"
        " WHERE status = 'processing'"
    )
    assert await queue.reclaim_expired(session_of(conn)) == 1
    queued = await rows(conn, "SELECT id FROM aoer_queue WHERE status = 'queued'")
    assert [r["id"] for r in queued] == [waiting.id]


async def test_renewing_extends_only_leases_still_held(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("a"), await make_tenant("b")
    await queue.enqueue_many(session_of(conn), [a, b])
    jobs = await session_of(conn, lease_s=1.0).jobs.claim(WORKER, 10)
    await conn.execute("UPDATE aoer_queue SET locked_by = 'thief' WHERE tenant_id = %s", (b,))
    checks = await session_of(conn, lease_s=600.0).jobs.renew(WORKER, [j.id for j in jobs])
    tenant_of = {j.id: j.tenant_id for j in jobs}
    assert {tenant_of[c.id] for c in checks if c.renewed} == {a}
    assert {tenant_of[c.id] for c in checks if c.lost} == {b}, "another worker holds b's job"
    [row] = await rows(
        conn, "SELECT lease_expires_at - now() AS left FROM aoer_queue WHERE tenant_id = %s", a
    )
    assert row["left"] > timedelta(minutes=9)


async def test_enqueue_all_active_queues_every_active_tenant_once_at_low(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    active = [await make_tenant(f"a{i}") for i in range(5)]
    await make_tenant("gone", active=False)
    urgent = await queue.enqueue(session_of(conn), active[0], "urgent")
    assert await queue.trigger_cron(session_of(conn)) == 5
    assert await queue.trigger_cron(session_of(conn)) == 5, "coalesces into the waiting jobs"
    jobs = await rows(conn, "SELECT tenant_id, priority FROM aoer_queue")
    assert len(jobs) == 5
    by_tenant = {r["tenant_id"]: r["priority"] for r in jobs}
    assert by_tenant[urgent.tenant_id] == "urgent"
    assert sorted(set(by_tenant.values())) == ["low", "urgent"]


async def test_queue_status_reports_pending_processing_completed_failed(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    jobs = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    await queue.process_batch(session_of(conn), WORKER, jobs)
    await queue.enqueue(session_of(conn), tenant)
    await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    await queue.enqueue(session_of(conn), tenant)
    status = (await session_of(conn).jobs.statuses([tenant]))[tenant]
    assert (status.pending, status.processing, status.completed, status.failed) == (1, 1, 1, 0)
    depth = {(d.status, d.priority): d.jobs for d in await session_of(conn).jobs.depth()}
    assert depth == {
        ("queued", "medium"): 1,
        ("processing", "medium"): 1,
        ("completed", "medium"): 1,
    }


def v7_millis(u: UUID) -> int:
    """The Unix time in milliseconds a version 7 UUID carries in its first 48 bits."""
    return u.int >> 80


async def test_job_and_event_ids_are_time_ordered_version_7_uuids(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenants = [await make_tenant() for _ in range(3)]
    for tenant in tenants:
        await add_signals(tenant, [{"days_ago": 0, "aeo": "60"}])
    [before] = await rows(  # floored, as the ids' milliseconds are
        conn, "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms"
    )
    jobs = []
    for tenant in tenants:  # one enqueue per millisecond or more: their ids sort in that order
        jobs.append(await queue.enqueue(session_of(conn), tenant, "high"))
        await conn.execute("SELECT pg_sleep(0.002)")
    claimed = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    await queue.process_batch(session_of(conn), WORKER, claimed)
    [after] = await rows(
        conn, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms"
    )
    events = [
        UUID(str(r["id"]))
        for r in await rows(conn, "SELECT id FROM metrics_events ORDER BY created_at, id")
    ]
    ids = [job.id for job in jobs]
    assert ids == sorted(ids)
    assert len(events) == 3
    for u in ids + events:
        assert (u.version, u.variant) == (7, "specified in RFC 4122"), u
        assert before["ms"] <= v7_millis(u) <= after["ms"], u
    # The 74 other bits are random: ids taken in the same millisecond still differ.
    [same] = await rows(
        conn, "SELECT count(DISTINCT aoer_uuid_v7()) AS n FROM generate_series(1, 10000)"
    )
    assert same["n"] == 10000


async def test_ids_drawn_one_after_another_are_in_order_within_a_millisecond(
    conn: Connection,
) -> None:
    # One statement draws hundreds of ids a millisecond on a fast host; ordered only to the
    # millisecond, they landed at random in an index's newest pages and split them half and
    # half (migration 0028). The 64 bits before the variant are time, version and fraction.
    [drawn] = await rows(
        conn, "SELECT array_agg(aoer_uuid_v7() ORDER BY g) AS ids FROM generate_series(1, 4000) g"
    )
    assert isinstance(drawn["ids"], list)
    ids = [UUID(str(u)) for u in drawn["ids"]]
    times = [u.int >> 64 for u in ids]
    assert times == sorted(times)
    assert {(u.version, u.variant) for u in ids} == {(7, "specified in RFC 4122")}
    fractions = {t & 0xFFF for t in times}
    millis = {t >> 16 for t in times}
    assert len(fractions) > 2 * len(millis)  # sub-millisecond precision, not random bits
    assert len(set(ids)) == 4000


async def test_a_failed_attempt_of_a_deactivated_tenant_is_not_retried(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    """Deactivated while its job ran: the failure closes the job (no retry would recompute a
    tenant its owner turned off), saying why."""
    tenant = await make_tenant()
    await queue.enqueue(session_of(conn), tenant)
    [job] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 10)
    await conn.execute("UPDATE tenants SET active = false WHERE id = %s", (tenant,))
    [attempt] = await queue.fail(session_of(conn), WORKER, [(job, "boom")], random.Random(1))
    assert (attempt.status, attempt.retry_count) == ("failed", 1)
    assert attempt.error_message == "boom (not retried: the tenant is inactive)"


async def test_the_oldest_age_is_the_wait_since_due_and_the_time_running(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    """`aoer status`, the dashboard and /metrics read a queue's oldest age as an alarm: from
    `created_at` a job retried a moment ago looked stuck for hours, and one waiting out its
    backoff looked fresh."""
    retried, backing_off, running = [await make_tenant(f"t{i}") for i in range(3)]
    for tenant in (retried, backing_off, running):
        await queue.enqueue(session_of(conn), tenant, "high")
    [job] = await session_of(conn, lease_s=LEASE_S).jobs.claim(WORKER, 1)
    await conn.execute(
        "UPDATE aoer_queue SET created_at = now() - interval '2 hours',"
        " started_at = now() - interval '30 seconds' WHERE id = %s",
        (job.id,),
    )
    await conn.execute(
        "UPDATE aoer_queue SET created_at = now() - interval '1 hour',"
        " scheduled_at = now() - interval '5 seconds' WHERE tenant_id = %s AND id <> %s",
        (retried if job.tenant_id != retried else backing_off, job.id),
    )
    due = retried if job.tenant_id != retried else backing_off
    later = ({retried, backing_off, running} - {job.tenant_id, due}).pop()
    await conn.execute(
        "UPDATE aoer_queue SET created_at = now() - interval '3 hours',"
        " scheduled_at = now() + interval '1 minute' WHERE tenant_id = %s",
        (later,),
    )
    depth = {(d.status, d.priority): d for d in await session_of(conn).jobs.depth()}
    waiting, in_flight = depth[("queued", "high")], depth[("processing", "high")]
    assert waiting.jobs == 2
    assert waiting.oldest_age_s is not None
    assert 5 <= waiting.oldest_age_s < 60  # the due one, since it came due
    assert in_flight.oldest_age_s is not None
    assert 30 <= in_flight.oldest_age_s < 90  # running for
    await conn.execute("UPDATE aoer_queue SET scheduled_at = now() + interval '1 minute'"
                       " WHERE status = 'queued'")  # fmt: skip
    depth = {(d.status, d.priority): d for d in await session_of(conn).jobs.depth()}
    assert depth[("queued", "high")].oldest_age_s is None  # nothing due: nothing waits
