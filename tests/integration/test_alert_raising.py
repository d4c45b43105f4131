"""Alerts are raised in the recompute's own transaction, once per transition (DESIGN §13)."""

import asyncio
import json
from typing import Any
from uuid import UUID

from aoer import queue
from aoer.constants import ALERT_CHANNEL
from aoer.db.pool import Connection, Pool, connect
from aoer.db.queries import query
from aoer.queue import console
from tests.conftest import AddSignals, MakeTenant, session_of

WORKER = "alert-test-worker"
ACTOR = console.Actor("test", "admin")
STEADY = [{"days_ago": d, "aeo": "80.00", "geo": "80.00", "ugc": "80.00"} for d in range(10)]


async def rule(
    conn: Connection, tenant_id: UUID, kind: str, params: str = "{}", *, endpoint: bool = True
) -> UUID:
    endpoint_ids: list[UUID] = []
    if endpoint:
        cur = await conn.execute(
            "INSERT INTO alert_endpoints (url, secret, created_by)"
            " VALUES ('http://127.0.0.1:9/hook', 'whsec_MDEyMzQ1Njc4OWFiY2RlZg==', 't')"
            " RETURNING id"
        )
        row = await cur.fetchone()
        assert row is not None
        endpoint_ids.append(row["id"])  # type: ignore[arg-type]
    cur = await conn.execute(
        "INSERT INTO alert_rules (scope, tenant_id, kind, params, endpoint_ids, emails,"
        " created_by) VALUES ('tenant', %s, %s, %s::jsonb, %s, %s, 't') RETURNING id",
        (tenant_id, kind, params, endpoint_ids, ["ops@example.com"]),
    )
    row = await cur.fetchone()
    assert row is not None
    return row["id"]  # type: ignore[return-value]


async def recompute(conn: Connection, tenant_ids: list[UUID], worker: str = WORKER) -> None:
    await queue.enqueue_many(session_of(conn), tenant_ids, "high")
    jobs = await session_of(conn, lease_s=30).jobs.claim(worker, len(tenant_ids))
    await queue.process_batch(session_of(conn), worker, jobs)


async def alerts_of(conn: Connection, tenant_id: UUID) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT a.kind, a.data, (SELECT count(*) FROM alert_deliveries d WHERE d.alert_id = a.id)"
        " AS deliveries FROM alerts a WHERE tenant_id = %s ORDER BY created_at",
        (tenant_id,),
    )
    return list(await cur.fetchall())


async def thin_out(conn: Connection, tenant_id: UUID) -> None:
    """Leave two data points: the risk rises to High (0.80)."""
    await conn.execute(
        "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1",
        (tenant_id,),
    )


async def test_risk_level_up_raises_one_alert_with_its_deliveries(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    t = await make_tenant("Rising Risk Motors")
    await add_signals(t, STEADY)
    await rule(conn, t, "risk_level_up")
    await recompute(conn, [t])  # the first recompute: nothing to compare with
    await recompute(conn, [t])  # no change: no transition
    assert await alerts_of(conn, t) == []
    await thin_out(conn, t)
    await recompute(conn, [t])
    raised = await alerts_of(conn, t)
    assert len(raised) == 1
    alert = raised[0]
    assert alert["kind"] == "risk_level_up"
    assert alert["deliveries"] == 2  # the endpoint and the e-mail address
    data = alert["data"]
    assert data["tenantName"] == "Rising Risk Motors"
    assert data["previous"]["riskLevel"] == "Low"
    assert data["current"]["riskLevel"] == "High"
    await recompute(conn, [t])  # still High: no new transition
    assert len(await alerts_of(conn, t)) == 1


async def test_an_alert_rolls_back_with_its_recompute(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    t = await make_tenant()
    await add_signals(t, STEADY)
    await rule(conn, t, "risk_level_up")
    await recompute(conn, [t])
    await thin_out(conn, t)
    await queue.enqueue_many(session_of(conn), [t], "high")
    jobs = await session_of(conn, lease_s=30).jobs.claim(WORKER, 1)
    async with conn.transaction(force_rollback=True):
        await queue.process_batch(session_of(conn), WORKER, jobs)
        assert len(await alerts_of(conn, t)) == 1  # written inside the batch's transaction
    assert await alerts_of(conn, t) == []


async def test_grade_down_score_drop_and_stale_data_fire_on_their_transitions(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    t = await make_tenant()
    await add_signals(t, STEADY)
    await rule(conn, t, "grade_down", endpoint=False)
    await rule(conn, t, "score_drop", '{"points": 10, "days": 1}', endpoint=False)
    await rule(conn, t, "stale_data", '{"days": 3}', endpoint=False)
    await recompute(conn, [t])
    # The first recompute is the score_drop reference "as of a day ago".
    await conn.execute(
        "UPDATE metrics_events SET created_at = now() - interval '2 days' WHERE tenant_id = %s",
        (t,),
    )
    # Every point moves 5 days back (stale) and falls to 50 (Excellent -> Fair).
    await conn.execute("DELETE FROM aiv_raw_signals WHERE dealer_id = %s", (t,))
    await add_signals(
        t, [{"days_ago": d + 5, "aeo": "50.00", "geo": "50.00", "ugc": "50.00"} for d in range(9)]
    )
    await recompute(conn, [t])
    kinds = sorted(a["kind"] for a in await alerts_of(conn, t))
    assert kinds == ["grade_down", "score_drop", "stale_data"]
    drop = next(a["data"] for a in await alerts_of(conn, t) if a["kind"] == "score_drop")
    assert drop["reference"]["aoerScore"] == 80
    assert drop["drop"] == 30
    await recompute(conn, [t])
    assert len(await alerts_of(conn, t)) == 3


async def test_job_failed_raises_when_a_job_ends_failed(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    await rule(conn, t, "job_failed", endpoint=False)
    await queue.enqueue_many(session_of(conn), [t], "high")
    jobs = await session_of(conn, lease_s=30).jobs.claim(WORKER, 1)
    await conn.execute("UPDATE aoer_queue SET retry_count = max_retries - 1")
    async with conn.transaction():
        await queue.fail(session_of(conn), WORKER, [(jobs[0], "boom")])
        await queue.raise_alerts(session_of(conn), [], [jobs[0].id])
        await queue.raise_alerts(session_of(conn), [], [jobs[0].id])  # replayed: deduplicated
    raised = await alerts_of(conn, t)
    assert [a["kind"] for a in raised] == ["job_failed"]
    assert raised[0]["data"]["job"]["error"] == "boom"


async def test_a_retried_job_failing_again_raises_again(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    """A failed job retried from the console keeps its id; its next final failure is a new
    transition and a new alert (it was once deduplicated away as the first one's replay)."""
    t = await make_tenant()
    await rule(conn, t, "job_failed", endpoint=False)
    await queue.enqueue_many(session_of(conn), [t], "high")
    for error in ("first boom", "second boom"):
        jobs = await session_of(conn, lease_s=30).jobs.claim(WORKER, 1)
        assert len(jobs) == 1
        await conn.execute("UPDATE aoer_queue SET retry_count = max_retries - 1")
        async with conn.transaction():
            await queue.fail(session_of(conn), WORKER, [(jobs[0], error)])
            await queue.raise_alerts(session_of(conn), [], [jobs[0].id])
        if error == "first boom":
            retried = await console.retry(session_of(conn), jobs[0].id, ACTOR)
            assert retried.queued_job_id == jobs[0].id  # the same job, back in the queue
    raised = await alerts_of(conn, t)
    assert [(a["kind"], a["data"]["job"]["error"]) for a in raised] == [
        ("job_failed", "first boom"),
        ("job_failed", "second boom"),
    ]


async def test_organisation_rules_watch_every_tenant_of_the_organisation(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    cur = await conn.execute("INSERT INTO organizations (name) VALUES ('Group') RETURNING id")
    org = (await cur.fetchone())["id"]  # type: ignore[index]
    inside, outside = await make_tenant("In"), await make_tenant("Out")
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org, inside))
    await conn.execute(
        "INSERT INTO alert_rules (scope, org_id, kind, emails, created_by)"
        " VALUES ('org', %s, 'risk_level_up', '{a@example.com}', 't')",
        (org,),
    )
    for t in (inside, outside):
        await add_signals(t, STEADY)
    await recompute(conn, [inside, outside])
    for t in (inside, outside):
        await thin_out(conn, t)
    await recompute(conn, [inside, outside])
    assert len(await alerts_of(conn, inside)) == 1
    assert await alerts_of(conn, outside) == []


async def test_the_same_transition_recomputed_twice_at_once_raises_one_alert(
    conn: Connection, db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """Two workers recompute one tenant at once (a job in flight and the waiting job queued
    meanwhile), the later transaction started first: the recompute's lock on the summary
    serialises them, the second compares with the first's result, one alert is written."""
    t = await make_tenant()
    await add_signals(t, STEADY)
    await rule(conn, t, "risk_level_up")
    await recompute(conn, [t])
    await thin_out(conn, t)
    await queue.enqueue_many(session_of(conn), [t], "high")
    first = await session_of(conn, lease_s=30).jobs.claim("worker-a", 1)
    await queue.enqueue_many(session_of(conn), [t], "high")  # a new job: the first is in flight
    second = await session_of(conn, lease_s=30).jobs.claim("worker-b", 1)
    assert first
    assert second
    assert first[0].id != second[0].id
    late = await connect(db_url)
    try:
        async with late.transaction():
            await late.execute("SELECT 1")  # B's transaction starts before A's
            await queue.process_batch(session_of(conn), "worker-a", first)  # A commits
            outcome = await queue.process_batch(session_of(late), "worker-b", second)
            assert len(outcome.completed) == 1
    finally:
        await late.close()
    raised = await alerts_of(conn, t)
    assert len(raised) == 1
    assert raised[0]["deliveries"] == 2


async def test_a_replayed_batch_raises_its_transition_once(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    t = await make_tenant()
    await add_signals(t, STEADY)
    await rule(conn, t, "risk_level_up")
    await recompute(conn, [t])
    await thin_out(conn, t)
    await queue.enqueue_many(session_of(conn), [t], "high")
    jobs = await session_of(conn, lease_s=30).jobs.claim(WORKER, 1)
    async with conn.transaction():
        outcome = await queue.process_batch(session_of(conn), WORKER, jobs)
        # The same completed recompute handed to the alert statement again (a replay).
        assert await queue.raise_alerts(session_of(conn), outcome.completed, []) == 0
    assert len(await alerts_of(conn, t)) == 1


async def test_no_active_rule_reads_nothing(pool: Pool, conn: Connection) -> None:
    """With no active rule the statement stops at its one-time check."""
    cur = await conn.execute("SELECT count(*) AS n FROM alert_rules")
    assert (await cur.fetchone())["n"] == 0  # type: ignore[index]
    raised = await session_of(conn).alerts.raise_for_batch([], [])
    assert raised.alerts == 0


async def test_the_delivery_claim_walks_the_due_index(conn: Connection) -> None:
    """50,000 delivered rows and a few pending: the claim reads the partial due index only."""
    await conn.execute("INSERT INTO tenants (name) VALUES ('t')")
    await conn.execute(
        "INSERT INTO alerts (tenant_id, kind, dedup_key, data)"
        " SELECT (SELECT id FROM tenants), 'grade_down', g::text, '{}'"
        " FROM generate_series(1, 50000) g"
    )
    await conn.execute(
        "INSERT INTO alert_deliveries (alert_id, tenant_id, email, status)"
        " SELECT id, tenant_id, 'a@example.com',"
        " CASE WHEN dedup_key::integer <= 100 THEN 'pending' ELSE 'delivered' END FROM alerts"
    )
    await conn.execute("ANALYZE alert_deliveries")
    cur = await conn.execute(
        b"EXPLAIN (FORMAT JSON) " + query("claim_deliveries").encode(),  # type: ignore[arg-type]
        {"worker_id": "w", "limit": 20, "lease_s": 60.0},
    )
    row = await cur.fetchone()
    assert row is not None
    plan = json.dumps(next(iter(row.values())), default=str)
    assert "alert_deliveries_due_idx" in plan
    scanned = [n for n in plan.split('"Node Type": ') if n.startswith('"Seq Scan"')]
    assert not any('"Relation Name": "alert_deliveries"' in n for n in scanned)


async def test_retention_deletes_old_alerts_but_keeps_pending_ones(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    for key, age, status in [("old", 500, "delivered"), ("stuck", 500, "pending"),
                             ("new", 5, "delivered")]:  # fmt: skip
        cur = await conn.execute(
            "INSERT INTO alerts (tenant_id, kind, dedup_key, data, created_at)"
            " VALUES (%s, 'grade_down', %s, '{}', now() - make_interval(days => %s)) RETURNING id",
            (t, key, age),
        )
        alert = (await cur.fetchone())["id"]  # type: ignore[index]
        await conn.execute(
            "INSERT INTO alert_deliveries (alert_id, tenant_id, email, status)"
            " VALUES (%s, %s, 'a@example.com', %s)",
            (alert, t, status),
        )
    assert await session_of(conn).alerts.delete_old(400, 100) == 1
    cur = await conn.execute("SELECT dedup_key FROM alerts ORDER BY dedup_key")
    assert [r["dedup_key"] for r in await cur.fetchall()] == ["new", "stuck"]
    assert await session_of(conn).alerts.delete_old(400, 100) == 0


async def test_data_that_runs_out_is_stale_data_not_a_fall_to_poor_and_critical(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """A summary without data is stored as 0.00 / 1.00 (DESIGN §3) and shown as "No data":
    when a dealership's signals run out of the window, only stale_data speaks, and it says
    "No data", not Poor / Critical; when data comes back, nothing "rises" from 0.00 either."""

    async def changes() -> tuple[object, object]:
        found = (await session_of(conn).scores.summary(t)).summary
        assert found is not None
        return found.change, found.change_7d

    t = await make_tenant()
    await add_signals(t, STEADY)
    for kind, params in (
        ("risk_level_up", "{}"),
        ("grade_down", "{}"),
        ("score_drop", '{"points": 10, "days": 1}'),
        ("stale_data", '{"days": 3}'),
    ):
        await rule(conn, t, kind, params, endpoint=False)
    await recompute(conn, [t])
    await conn.execute(  # the score_drop reference "as of a day ago": 80.00 with data
        "UPDATE metrics_events SET created_at = now() - interval '8 days' WHERE tenant_id = %s",
        (t,),
    )
    await conn.execute(  # every signal out of the 30-day window
        "UPDATE aiv_raw_signals SET date = date - 40 WHERE dealer_id = %s", (t,)
    )
    await recompute(conn, [t])
    raised = await alerts_of(conn, t)
    assert [a["kind"] for a in raised] == ["stale_data"]
    current = raised[0]["data"]["current"]
    assert (current["grade"], current["riskLevel"]) == ("No data", "No data")
    assert await changes() == (None, None), "no score to compare"

    await conn.execute("UPDATE aiv_raw_signals SET date = date + 40 WHERE dealer_id = %s", (t,))
    await recompute(conn, [t])  # data again: 0.00 -> 80.00 is not a rise either
    assert [a["kind"] for a in await alerts_of(conn, t)] == ["stale_data"]
    change, _ = await changes()
    assert change is None


async def test_update_aoer_summary_raises_what_a_worker_raises(
    conn: Connection, db_url: str, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """The old system's entry point (DESIGN §17: "exactly as a worker does") raises the same
    alerts, with their deliveries and wake-up, as a worker recomputing the same change."""
    by_function = await make_tenant("Script Motors")
    by_worker = await make_tenant("Worker Motors")
    for t in (by_function, by_worker):
        await add_signals(t, STEADY)
        await rule(conn, t, "risk_level_up")
        await rule(conn, t, "grade_down", endpoint=False)
    await conn.execute("SELECT update_aoer_summary(%s)", (by_function,))
    await recompute(conn, [by_worker])
    for t in (by_function, by_worker):
        await thin_out(conn, t)

    listener = await connect(db_url)
    try:
        await listener.execute(f"LISTEN {ALERT_CHANNEL}")
        cur = await conn.execute("SELECT update_aoer_summary(%s) AS ok", (by_function,))
        assert await cur.fetchone() == {"ok": True}
        notice = await asyncio.wait_for(anext(listener.notifies()), 10)
    finally:
        await listener.close()
    await recompute(conn, [by_worker])

    raised, expected = await alerts_of(conn, by_function), await alerts_of(conn, by_worker)
    assert [a["kind"] for a in raised] == ["risk_level_up"]
    assert raised[0]["deliveries"] == 2  # the endpoint and the e-mail address
    mine, theirs = raised[0]["data"], expected[0]["data"]
    own = ("alertId", "ruleId", "tenantId", "tenantName")
    assert {k: v for k, v in mine.items() if k not in own} == {
        k: v for k, v in theirs.items() if k not in own
    }
    assert mine["tenantName"] == "Script Motors"
    assert notice.payload == mine["alertId"]
    # Named by the recompute's event, so a second transition of the same tenant is its own.
    cur = await conn.execute(
        "SELECT a.dedup_key, e.id AS event_id FROM alerts a JOIN metrics_events e"
        " ON a.dedup_key LIKE '%%:' || e.id WHERE a.tenant_id = %s",
        (by_function,),
    )
    assert len(await cur.fetchall()) == 1
    await conn.execute("SELECT update_aoer_summary(%s)", (by_function,))  # still High
    assert len(await alerts_of(conn, by_function)) == 1
