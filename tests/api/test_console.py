"""The operator console's API (DESIGN §15) on a real PostgreSQL: jobs, retry, cancel, pause,
workers; access by role; every action audited."""

from typing import Any
from uuid import UUID, uuid4

from aoer import queue
from aoer.db.pool import Connection, connect
from tests.api.conftest import Api, ApiFactory, count
from tests.api.org_world import OrgWorld, org_bearer, world
from tests.api.test_sessions import login_link, same_origin, signed_in
from tests.conftest import MakeTenant, session_of

__all__ = ["world"]  # the fixture, imported for pytest

WORKER = "console-test-worker"


async def failed_job(conn: Connection, tenant: UUID, error: str = "poisoned tenant") -> UUID:
    """A job whose only attempt failed (max_retries 1), through the queue's own failure path."""
    session = session_of(conn, max_retries=1)
    await queue.enqueue_many(session, [tenant], "high")
    [job] = await session.jobs.claim(WORKER, 1)
    [attempt] = await queue.fail(session, WORKER, [(job, error)])
    assert attempt.status == "failed"
    return job.id


async def one(conn: Connection, sql: str, *params: Any) -> dict[str, Any]:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def audit_actions(conn: Connection) -> list[tuple[str, str | None]]:
    cur = await conn.execute("SELECT action, target FROM audit_log ORDER BY id")
    return [(r["action"], r["target"]) for r in await cur.fetchall()]  # type: ignore[call-overload]


async def test_job_list_pages_newest_first_through_every_job_once(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenants = [await make_tenant(f"Dealer {i}") for i in range(7)]
    await queue.enqueue_many(session_of(conn), tenants, "low")
    # Same created_at for several rows: the id breaks the tie, so no row is skipped or repeated.
    await conn.execute("UPDATE aoer_queue SET created_at = date_trunc('hour', now())")
    seen: list[str] = []
    before: str | None = None
    while True:
        params = {"limit": 3, **({"before": before} if before else {})}
        page = await api.client.get("/api/jobs", params=params, headers=api.admin)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [j["id"] for j in body["jobs"]]
        before = body["nextBefore"]
        if before is None:
            break
    cur = await conn.execute("SELECT id::text FROM aoer_queue ORDER BY created_at DESC, id DESC")
    assert seen == [r["id"] for r in await cur.fetchall()]  # type: ignore[call-overload]
    everything = await api.client.get("/api/jobs", params={"limit": 7}, headers=api.admin)
    assert everything.json()["nextBefore"] is None  # a full last page says it is the last
    job = (await api.client.get("/api/jobs", params={"limit": 1}, headers=api.admin)).json()
    assert set(job["jobs"][0]) >= {
        "id", "tenantId", "tenantName", "priority", "status", "retryCount", "maxRetries",
        "scheduledAt", "startedAt", "completedAt", "errorMessage", "createdAt",
    }  # fmt: skip


async def test_job_list_filters_by_status_priority_and_tenant(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("A"), await make_tenant("B")
    failed = await failed_job(conn, a)
    await queue.enqueue_many(session_of(conn), [a], "urgent")
    await queue.enqueue_many(session_of(conn), [b], "low")

    async def ids(**params: str) -> set[str]:
        response = await api.client.get("/api/jobs", params=params, headers=api.admin)
        assert response.status_code == 200, response.text
        return {j["id"] for j in response.json()["jobs"]}

    assert await ids(status="failed") == {str(failed)}
    assert len(await ids(status="queued")) == 2
    assert await ids(status="pending") == await ids(status="queued")  # as status counts say
    assert len(await ids(priority="urgent")) == 1
    assert await ids(tenantId=str(a), status="failed", priority="high") == {str(failed)}
    assert len(await ids(tenantId=str(a))) == 2
    assert await ids(tenantId=str(b), status="failed") == set()


async def test_job_list_refuses_bad_filters_with_422(api: Api) -> None:
    for params in (
        {"status": "done"},
        {"priority": "asap"},
        {"tenantId": "nope"},
        {"limit": "0"},
        {"limit": "501"},
        {"before": "not-a-cursor"},
    ):
        response = await api.client.get("/api/jobs", params=params, headers=api.admin)
        assert response.status_code == 422, (params, response.text)
        assert "error" in response.json()
    bad_status = await api.client.get("/api/jobs", params={"status": "done"}, headers=api.admin)
    [issue] = bad_status.json()["errors"]
    assert issue["field"] == "status"  # not pydantic's name for a member of a union
    assert issue["message"] == (
        "Input should be 'queued', 'processing', 'completed', 'failed' or 'pending' (got 'done')"
    )


async def test_job_detail_lists_each_failed_attempt_with_its_error(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    job = await failed_job(conn, tenant, "boom: division by zero")
    response = await api.client.get(f"/api/jobs/{job}", headers=api.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["retryCount"]) == (str(job), "failed", 1)
    assert [(a["attempt"], a["errorMessage"]) for a in body["attempts"]] == [
        (1, "boom: division by zero")
    ]
    assert body["attempts"][0]["errorData"]["workerId"] == WORKER


async def test_a_job_in_flight_shows_its_lease(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    """An operator asking why a job is stuck reads how long it has run and until when its
    worker's lease holds it (a live worker renews it; a dead one's runs out)."""
    tenant = await make_tenant()
    await queue.enqueue_many(session_of(conn), [tenant], "high")
    [job] = await session_of(conn, lease_s=30).jobs.claim(WORKER, 1)
    body = (await api.client.get(f"/api/jobs/{job.id}", headers=api.admin)).json()
    assert body["status"] == "processing"
    assert body["leaseExpiresAt"] is not None
    page = await api.client.get(f"/dashboard/jobs/{job.id}", headers=api.admin)
    assert 'id="job-in-flight"' in page.text
    assert "lease until" in page.text


async def test_retry_or_cancel_of_a_job_a_batch_holds_says_so(
    api: Api, conn: Connection, db_url: str, make_tenant: MakeTenant
) -> None:
    """A batch settling a job holds its row: a cancel (or retry) of it answered 503 "the data
    is busy" over HTTP and a raw lock timeout on the command line, naming neither the job
    nor why."""
    tenant = await make_tenant()
    await queue.enqueue_many(session_of(conn), [tenant], "high")
    [job] = await session_of(conn, lease_s=30).jobs.claim(WORKER, 1)
    batch = await connect(db_url)  # as a worker's completion would, until it commits
    try:
        await batch.execute("BEGIN")
        await batch.execute("SELECT 1 FROM aoer_queue WHERE id = %s FOR UPDATE", (job.id,))
        for action, wanted in (("cancel", "queued"), ("retry", "failed")):
            answer = await api.client.post(f"/api/jobs/{job.id}/{action}", headers=api.admin)
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"].startswith(
                f"job {job.id} is held by another transaction right now, most likely a worker's"
                f" batch settling it (so it is processing): only a {wanted} job can be"
            )
    finally:
        await batch.close()
    assert await count(conn, "audit_log") == 0


async def test_unknown_job_is_404_and_a_malformed_id_422(api: Api) -> None:
    for method in ("get", "post"):
        for suffix in ("", "/retry", "/cancel"):
            if (method == "get") != (suffix == ""):
                continue
            call = getattr(api.client, method)
            unknown = await call(f"/api/jobs/{uuid4()}{suffix}", headers=api.admin)
            assert unknown.status_code == 404, unknown.text
            assert "unknown job" in unknown.json()["error"]
            malformed = await call(f"/api/jobs/12345{suffix}", headers=api.admin)
            assert malformed.status_code == 422, malformed.text


async def test_retry_puts_a_failed_job_back_with_attempts_reset_and_audits_it(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    job = await failed_job(conn, tenant)
    response = await api.client.post(f"/api/jobs/{job}/retry", headers=api.admin)
    assert response.status_code == 200, response.text
    assert response.json()["coalesced"] is False
    assert response.json()["queuedJobId"] == str(job)
    row = await one(
        conn, "SELECT status, retry_count, error_message FROM aoer_queue WHERE id = %s", job
    )
    assert row == {"status": "queued", "retry_count": 0, "error_message": None}
    assert await audit_actions(conn) == [("job.retry", str(job))]
    again = await api.client.post(f"/api/jobs/{job}/retry", headers=api.admin)
    assert again.status_code == 409
    assert "only a failed job can be retried" in again.json()["error"]
    assert await audit_actions(conn) == [("job.retry", str(job))], "a refused retry is not audited"


async def test_retry_coalesces_into_the_tenants_waiting_job(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    job = await failed_job(conn, tenant)
    [waiting] = await queue.enqueue_many(session_of(conn), [tenant], "low")
    await conn.execute(  # it failed twice already and waits out its backoff
        "UPDATE aoer_queue SET retry_count = 2, error_message = 'boom',"
        " scheduled_at = now() + interval '10 minutes' WHERE id = %s",
        (waiting.id,),
    )
    response = await api.client.post(f"/api/jobs/{job}/retry", headers=api.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["coalesced"], body["queuedJobId"]) == (True, str(waiting.id))
    assert "coalesced" in body["message"]
    row = await one(
        conn,
        "SELECT priority, retry_count, error_message, scheduled_at <= now() AS due"
        " FROM aoer_queue WHERE id = %s",
        waiting.id,
    )
    assert row["priority"] == "high", "the waiting job takes the failed job's higher priority"
    assert (row["retry_count"], row["error_message"], row["due"]) == (0, None, True), (
        "a retry resets the attempts of the job that carries it, and makes it due now"
    )
    assert await count(conn, "aoer_queue") == 2  # one waiting job for the tenant, still
    audit = await one(conn, "SELECT details FROM audit_log WHERE action = 'job.retry'")
    assert audit["details"]["coalescedInto"] == str(waiting.id)


async def test_cancel_removes_a_queued_job_and_refuses_others_with_409(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("A"), await make_tenant("B")
    await queue.enqueue_many(session_of(conn), [a], "urgent")
    [queued] = await queue.enqueue_many(session_of(conn), [b], "low")
    [running] = await session_of(conn).jobs.claim(WORKER, 1)  # the urgent one
    assert running.tenant_id == a
    cancelled = await api.client.post(f"/api/jobs/{queued.id}/cancel", headers=api.admin)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled"] is True
    assert (await api.client.get(f"/api/jobs/{queued.id}", headers=api.admin)).status_code == 404
    refused = await api.client.post(f"/api/jobs/{running.id}/cancel", headers=api.admin)
    assert refused.status_code == 409
    assert "processing" in refused.json()["error"]
    assert await audit_actions(conn) == [("job.cancel", str(queued.id))]


async def test_pause_stops_claims_but_not_enqueues_and_resume_restores_them(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    paused = await api.client.post("/api/queue/pause", headers=api.admin)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["changed"]) == (True, True)
    enqueued = await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(tenant)}, headers=api.admin
    )
    assert enqueued.status_code == 202, "enqueues still succeed while paused"
    assert await session_of(conn).jobs.claim(WORKER, 10) == []
    state = await api.client.get("/api/queue/state", headers=api.admin)
    assert state.json()["paused"] is True
    resumed = await api.client.post("/api/queue/resume", headers=api.admin)
    assert resumed.json()["paused"] is False
    assert len(await session_of(conn).jobs.claim(WORKER, 10)) == 1
    assert [a for a, _ in await audit_actions(conn)] == ["queue.pause", "queue.resume"]


async def test_the_fleet_page_tells_an_administrator_the_queue_is_paused(
    api: Api, world: OrgWorld
) -> None:
    notice = 'id="queue-paused"'
    assert notice not in (await api.client.get("/dashboard/fleet", headers=api.admin)).text
    await api.client.post("/api/queue/pause", headers=api.admin)

    page = (await api.client.get("/dashboard/fleet", headers=api.admin)).text

    assert notice in page
    assert "The queue is paused." in page
    assert "aoer queue resume" in page
    # An organisation cannot resume it: its fleet view does not carry the operator's notice.
    org_page = await api.client.get("/dashboard/fleet", headers=org_bearer(api, world.org_a))
    assert org_page.status_code == 200
    assert notice not in org_page.text
    await api.client.post("/api/queue/resume", headers=api.admin)
    assert notice not in (await api.client.get("/dashboard/fleet", headers=api.admin)).text


async def test_the_fleet_and_jobs_pages_say_when_no_worker_runs(
    make_api: ApiFactory, conn: Connection, world: OrgWorld
) -> None:
    """With no live worker nothing is recomputed and the scheduler (inside workers) does not
    run, while the fleet page counted down to its next run: an operator paged at night was
    told all was well. A worker that is gone (killed) does not count."""
    api = await make_api(AOER_RUN_CRON=True)
    notice = 'id="no-live-worker"'

    async def pages() -> tuple[str, str]:
        fleet = await api.client.get("/dashboard/fleet", headers=api.admin)
        jobs = await api.client.get("/dashboard/jobs", headers=api.admin)
        return fleet.text, jobs.text

    fleet, jobs = await pages()
    assert notice in fleet
    assert "No worker is running." in fleet
    assert "Runs only while a worker runs." in fleet
    assert notice in jobs
    await conn.execute(
        "INSERT INTO aoer_workers (id, host, pid, jobs_in_hand, last_heartbeat_at)"
        " VALUES ('w-dead', 'h2', 12, 4, now() - interval '5 minutes')"
    )
    fleet, jobs = await pages()
    assert notice in fleet
    assert notice in jobs
    assert "w-dead" in jobs
    assert "held 4 when last seen" in jobs  # not "4 in hand": a live worker took them back
    await conn.execute(
        "INSERT INTO aoer_workers (id, host, pid, jobs_in_hand, last_heartbeat_at)"
        " VALUES ('w-live', 'h1', 11, 3, now())"
    )
    fleet, jobs = await pages()
    assert notice not in fleet
    assert "Runs only while a worker runs." not in fleet
    assert notice not in jobs
    # An organisation does not run workers: its fleet view does not carry the notice.
    await conn.execute("DELETE FROM aoer_workers")
    org_page = await api.client.get("/dashboard/fleet", headers=org_bearer(api, world.org_a))
    assert notice not in org_page.text


async def test_workers_lists_heartbeats_with_gone_ones_marked(api: Api, conn: Connection) -> None:
    await conn.execute(
        "INSERT INTO aoer_workers (id, host, pid, jobs_in_hand, last_heartbeat_at) VALUES"
        " ('w-live', 'h1', 11, 3, now()), ('w-dead', 'h2', 12, 0, now() - interval '5 minutes')"
    )
    response = await api.client.get("/api/workers", headers=api.admin)
    assert response.status_code == 200, response.text
    workers = response.json()["workers"]
    assert [(w["id"], w["alive"], w["jobsInHand"]) for w in workers] == [
        ("w-live", True, 3),
        ("w-dead", False, 0),
    ]
    assert set(workers[0]) >= {"id", "host", "pid", "startedAt", "lastHeartbeatAt", "jobsInHand"}


async def test_a_tenant_reads_only_its_own_jobs_and_changes_nothing(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("A"), await make_tenant("B")
    job_a, job_b = await failed_job(conn, a), await failed_job(conn, b)
    as_a = api.bearer(tenant=a)
    listed = await api.client.get("/api/jobs", headers=as_a)
    assert [j["id"] for j in listed.json()["jobs"]] == [str(job_a)]
    other = await api.client.get("/api/jobs", params={"tenantId": str(b)}, headers=as_a)
    assert other.status_code == 403, other.text  # another tenant named: refused, not emptied
    assert (await api.client.get(f"/api/jobs/{job_a}", headers=as_a)).status_code == 200
    assert (await api.client.get(f"/api/jobs/{job_b}", headers=as_a)).status_code == 404
    for path in (f"/api/jobs/{job_a}/retry", f"/api/jobs/{job_a}/cancel", "/api/queue/pause"):
        assert (await api.client.post(path, headers=as_a)).status_code == 403, path
    assert (await api.client.get("/api/workers", headers=as_a)).status_code == 403
    service = api.bearer("service")
    assert (await api.client.get("/api/jobs", headers=service)).status_code == 403
    assert (await api.client.post("/api/queue/pause", headers=service)).status_code == 403
    assert await audit_actions(conn) == []


async def test_jobs_pages_render_for_admins_and_their_forms_refuse_cross_site_posts(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("Poisoned <Motors>")
    job = await failed_job(conn, tenant, "boom <b>")
    listing = await api.client.get("/dashboard/jobs", headers=api.admin)
    assert listing.status_code == 200
    assert str(job) in listing.text
    # ids are time-ordered (UUIDv7): the random end tells jobs apart, the start is the clock
    assert f"<code>…{str(job)[-8:]}</code>" in listing.text
    assert "Poisoned &lt;Motors&gt;" in listing.text, "names are escaped"
    assert 'id="throughput-chart"' in listing.text
    assert 'id="latency-chart"' in listing.text
    detail = await api.client.get(f"/dashboard/jobs/{job}", headers=api.admin)
    assert detail.status_code == 200
    assert "boom &lt;b&gt;" in detail.text
    assert f'action="/dashboard/jobs/{job}/retry"' in detail.text
    as_tenant = await api.client.get("/dashboard/jobs", headers=api.bearer(tenant=tenant))
    assert as_tenant.status_code == 403

    # Signed in with the cookie: a post from another site is refused, nothing changes.
    await signed_in(api, login_link(api))
    refused = await api.client.post(
        f"/dashboard/jobs/{job}/retry", headers={"Origin": "http://evil.example"}
    )
    assert refused.status_code == 403
    assert await audit_actions(conn) == []
    retried = await api.client.post(f"/dashboard/jobs/{job}/retry", headers=same_origin(api))
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/dashboard/jobs/{job}?notice=retried"
    paused = await api.client.post("/dashboard/queue/pause", headers=same_origin(api))
    assert paused.status_code == 303
    page = await api.client.get("/dashboard/jobs?notice=paused")
    assert "Resume queue" in page.text
    assert [a for a, _ in await audit_actions(conn)] == ["job.retry", "queue.pause"]


async def test_the_jobs_page_finds_a_dealership_by_name_and_lists_nothing_for_a_bad_one(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    """People type a dealership's name, not its UUID: an unreadable filter used to list
    every job, as if it had matched."""
    ford, fordham = await make_tenant("Summit Ford"), await make_tenant("Fordham Kia")
    honda = await make_tenant("Lake Honda")
    jobs = {t: await failed_job(conn, t, "boom") for t in (ford, fordham, honda)}

    def listed(page: str) -> set[object]:
        return {t for t, job in jobs.items() if str(job) in page}

    by_name = await api.client.get("/dashboard/jobs?tenant=summit+ford", headers=api.admin)
    assert listed(by_name.text) == {ford}, "an exact name, any case"
    assert 'value="summit ford"' in by_name.text, "the box keeps what was typed"
    by_part = await api.client.get("/dashboard/jobs?tenant=honda", headers=api.admin)
    assert listed(by_part.text) == {honda}, "the one dealership containing it"
    assert "Jobs of Lake Honda only." in by_part.text, "and which one it took"
    several = await api.client.get("/dashboard/jobs?tenant=ford", headers=api.admin)
    assert listed(several.text) == set()
    assert "“ford” fits several dealerships:" in several.text
    assert f'href="/dashboard/jobs?tenant={fordham}">Fordham Kia</a>' in several.text
    nothing = await api.client.get("/dashboard/jobs?tenant=garbage", headers=api.admin)
    assert listed(nothing.text) == set()
    assert "No dealership is named like “garbage”." in nothing.text
    by_id = await api.client.get(f"/dashboard/jobs?tenant={honda}", headers=api.admin)
    assert listed(by_id.text) == {honda}
    assert "Jobs of Lake Honda only." in by_id.text  # a later page's links carry the id
    assert "fits several dealerships" in several.text
    motors = [await make_tenant(f"Motor {i}") for i in range(8)]
    eight = await api.client.get("/dashboard/jobs?tenant=motor", headers=api.admin)
    assert "Motor 7</a> — pick one." in eight.text, "eight shown are all there are (review)"
    motors.append(await make_tenant("Motor 8"))
    nine = await api.client.get("/dashboard/jobs?tenant=motor", headers=api.admin)
    assert "</a>, … — pick one." in nine.text, "more than are shown"


async def test_a_second_click_on_retry_or_cancel_shows_the_job_not_an_error(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    failed = await failed_job(conn, await make_tenant("A"))
    [waiting] = await queue.enqueue_many(session_of(conn), [await make_tenant("B")], "low")
    await signed_in(api, login_link(api))
    for job, action, first, again in (
        (failed, "retry", f"/dashboard/jobs/{failed}?notice=retried", "not_failed"),
        (waiting.id, "cancel", "/dashboard/jobs?notice=cancelled", None),
    ):
        done = await api.client.post(f"/dashboard/jobs/{job}/{action}", headers=same_origin(api))
        assert (done.status_code, done.headers["location"]) == (303, first)
        twice = await api.client.post(f"/dashboard/jobs/{job}/{action}", headers=same_origin(api))
        assert twice.status_code == 303, twice.text
        if again is None:  # the cancelled job is gone: back to the list
            assert twice.headers["location"] == "/dashboard/jobs?notice=gone"
        else:
            assert twice.headers["location"] == f"/dashboard/jobs/{job}?notice={again}"
        shown = await api.client.get(twice.headers["location"])
        assert shown.status_code == 200
        assert 'id="notice"' in shown.text
    [running] = await session_of(conn).jobs.claim(WORKER, 1)  # the retried job
    held = await api.client.post(f"/dashboard/jobs/{running.id}/cancel", headers=same_origin(api))
    assert held.headers["location"] == f"/dashboard/jobs/{failed}?notice=not_queued"
    assert [a for a, _ in await audit_actions(conn)] == ["job.retry", "job.cancel"]


async def test_an_organisation_sees_its_own_jobs_on_the_console_without_queue_controls(
    api: Api, conn: Connection, world: OrgWorld
) -> None:
    mine, theirs = await failed_job(conn, world.a), await failed_job(conn, world.b)
    as_org_a = org_bearer(api, world.org_a)
    listing = await api.client.get("/dashboard/jobs", headers=as_org_a)
    assert listing.status_code == 200
    assert str(mine) in listing.text
    assert str(theirs) not in listing.text, "another organisation's job is listed"
    assert 'id="queue-toggle"' not in listing.text, "pausing is the administrators' alone"
    assert "workers-title" not in listing.text, "the worker list is the administrators' alone"
    detail = await api.client.get(f"/dashboard/jobs/{mine}", headers=as_org_a)
    assert detail.status_code == 200
    assert f'action="/dashboard/jobs/{mine}/retry"' in detail.text
    hidden = await api.client.get(f"/dashboard/jobs/{theirs}", headers=as_org_a)
    assert hidden.status_code == 404
    admin_page = await api.client.get("/dashboard/jobs", headers=api.admin)
    assert 'id="queue-toggle"' in admin_page.text
    # Who paused the queue is an operator's account: the organisation reads only that one did.
    assert (await api.client.post("/api/queue/pause", headers=api.admin)).status_code == 200
    operator = (await api.client.get("/api/queue/state", headers=api.admin)).json()["changedBy"]
    assert operator
    theirs_state = (await api.client.get("/api/queue/state", headers=as_org_a)).json()
    assert (theirs_state["paused"], theirs_state["changedBy"]) == (True, None)
    listing = await api.client.get("/dashboard/jobs", headers=as_org_a)
    assert "by an administrator:" in listing.text
    assert f"by {operator}:" not in listing.text
    assert f"by {operator}:" in (await api.client.get("/dashboard/jobs", headers=api.admin)).text


async def test_the_job_page_marks_a_retry_and_a_lease_taken_back(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    """The attempts read #1 #1 after a retry, with nothing saying why they started over; and
    an attempt lost with its worker read 'retried after a backoff', though it ran again at
    once."""
    tenant = await make_tenant()
    job = await failed_job(conn, tenant, "first try")
    assert (await api.client.post(f"/api/jobs/{job}/retry", headers=api.admin)).status_code == 200
    await conn.execute("UPDATE aoer_queue SET max_retries = 3 WHERE id = %s", (job,))
    session = session_of(conn, lease_s=1)
    [claimed] = await session.jobs.claim(WORKER, 1)
    await conn.execute(
        "UPDATE aoer_queue SET lease_expires_at = now() - interval '1 minute' WHERE id = %s",
        (claimed.id,),
    )
    assert await queue.reclaim_expired(session) == 1
    page = await api.client.get(f"/dashboard/jobs/{job}", headers=api.admin)
    assert page.status_code == 200
    attempts = page.text[page.text.index('id="attempts"') :]
    assert (
        attempts.index("first try") < attempts.index("data-reset") < attempts.index("lease expired")
    )
    assert "attempts started over (a retry)" in attempts
    assert "taken back and run again at once" in attempts
    assert "retried after a backoff" not in attempts


async def test_the_jobs_page_says_which_filters_of_its_link_it_could_not_apply(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    """A mistyped or old link (`?status=bogus`) listed every job as if filtered."""
    job = await failed_job(conn, await make_tenant())
    params = {"status": "bogus", "priority": "asap", "before": "garbage"}
    page = await api.client.get("/dashboard/jobs", params=params, headers=api.admin)
    assert page.status_code == 200
    assert str(job) in page.text, "every job is listed"
    assert page.text.count("data-ignored") == 3
    assert "Not applied: the link&#39;s page position is not readable" in page.text
    assert "Not applied: “bogus” is not a job status (queued, processing, completed," in page.text
    assert "Not applied: “asap” is not a priority (" in page.text
    fine = await api.client.get(
        "/dashboard/jobs", params={"status": "pending", "priority": "high"}, headers=api.admin
    )
    assert "data-ignored" not in fine.text


async def test_a_browser_sent_to_no_dashboard_page_gets_a_page_saying_so(api: Api) -> None:
    """A mistyped dashboard address or a form's address opened as a page answered the API's
    JSON (`{"error":"Not Found"}`) to a browser; API clients keep their JSON."""
    browser = {**api.admin, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    missing = await api.client.get("/dashboard/nosuch", headers=browser)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "There is no such page on this dashboard." in missing.text
    form = await api.client.get("/dashboard/queue/resume", headers=browser)
    assert form.status_code == 405
    assert "what a button on a page sends, not a page to open" in form.text
    assert "allow" in form.headers
    as_api = await api.client.get("/dashboard/nosuch", headers=api.admin)
    assert as_api.json() == {"error": "Not Found"}
    api_path = await api.client.get("/api/nosuch", headers=browser)
    assert api_path.headers["content-type"].startswith("application/json")
