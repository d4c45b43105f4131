"""The operator console from the command line, against real `aoer worker` processes: pause
stops all three from claiming while enqueues still land, resume gets the jobs done; workers'
heartbeats are listed and their rows go on a clean exit; jobs list/show/retry/cancel."""

import asyncio
import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from aoer import queue
from aoer.db.pool import Connection
from tests.acceptance.conftest import AoerCli, start_aoer
from tests.conftest import MakeTenant, eventually, session_of

WORKERS = 3
QUIET_S = 3.0  # nothing may be claimed for this long while paused


async def scalar(conn: Connection, sql: str) -> Any:
    cur = await conn.execute(sql)  # type: ignore[arg-type]
    row = await cur.fetchone()
    assert row is not None
    return next(iter(dict(row).values()))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_pause_stops_three_workers_and_resume_finishes_the_jobs(
    aoer: AoerCli, db_url: str, conn: Connection, make_tenant: MakeTenant, tmp_path: Path
) -> None:
    tenants = [await make_tenant(f"Dealer {i}") for i in range(6)]
    workers = [
        start_aoer(db_url, tmp_path / f"worker-{i}.log", "worker", AOER_HOME=str(tmp_path))
        for i in range(WORKERS)
    ]
    try:

        def listed() -> list[dict[str, Any]]:
            return list(json.loads(ok(aoer("workers", "--json")))["workers"])

        await eventually(
            lambda: sum(w["alive"] for w in listed()) == WORKERS, "three workers heartbeat"
        )
        assert {w["pid"] for w in listed()} == {p.pid for p in workers}

        assert "queue paused" in ok(aoer("queue", "pause"))
        await eventually(
            lambda: all(w["paused"] for w in listed()), "every worker heard the pause", 5
        )
        await queue.enqueue_many(session_of(conn), tenants, "urgent")  # enqueues still land
        assert await scalar(conn, "SELECT count(*) FROM aoer_queue") == len(tenants)
        deadline = asyncio.get_running_loop().time() + QUIET_S
        while asyncio.get_running_loop().time() < deadline:
            claimed = await scalar(conn, "SELECT count(*) FROM aoer_queue WHERE status <> 'queued'")
            assert claimed == 0, "a worker claimed a job while the queue was paused"
            await asyncio.sleep(0.1)
        assert json.loads(ok(aoer("queue", "status", "--json")))["paused"] is True
        assert json.loads(ok(aoer("status", "--json")))["paused"] is True
        assert "the queue is paused" in ok(aoer("status"))  # the overview says so too
        # Queuing from the command line while paused says the jobs will wait.
        queued = aoer("enqueue", str(tenants[0]), "--priority", "urgent")
        assert queued.returncode == 0, queued.stderr
        assert "note: the queue is paused: workers claim nothing until `aoer queue resume`" in (
            queued.stderr
        )

        assert "queue resumed" in ok(aoer("queue", "resume"))
        assert json.loads(ok(aoer("status", "--json")))["paused"] is False
        assert "paused" not in ok(aoer("status"))

        async def all_done() -> bool:
            done = await scalar(conn, "SELECT count(*) FROM aoer_queue WHERE status = 'completed'")
            return bool(done == len(tenants))

        await eventually(all_done, "every job completed after the resume", 10)
        audit = await scalar(conn, "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log")
        assert audit == "queue.pause,queue.resume"
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in workers]
    assert codes == [0] * WORKERS
    assert await scalar(conn, "SELECT count(*) FROM aoer_workers") == 0, "rows go on clean exit"


async def test_jobs_list_show_retry_cancel_from_the_command_line(
    aoer: AoerCli, conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("Poisoned Motors")
    session = session_of(conn, max_retries=1)
    await queue.enqueue_many(session, [tenant], "high")
    [job] = await session.jobs.claim("cli-test", 1)
    await queue.fail(session, "cli-test", [(job, "poisoned tenant")])

    listed = json.loads(ok(aoer("jobs", "list", "--status", "failed", "--json")))
    assert [j["id"] for j in listed["jobs"]] == [str(job.id)]
    assert listed["nextBefore"] is None
    table = ok(aoer("jobs", "list"))  # piped: full ids, never cut
    assert str(job.id) in table
    shown = json.loads(ok(aoer("jobs", "show", str(job.id), "--json")))
    assert [a["errorMessage"] for a in shown["attempts"]] == ["poisoned tenant"]
    assert "poisoned tenant" in ok(aoer("jobs", "show", str(job.id)))

    # A job in flight says how long it has run and what its worker's lease says: whether a
    # live worker holds it (a slow or blocked batch) or a dead one left it.
    other = await make_tenant("Running Motors")
    await queue.enqueue_many(session, [other], "high")
    [running] = await session_of(conn, lease_s=30).jobs.claim("cli-test", 1)
    await conn.execute(
        "UPDATE aoer_queue SET started_at = now() - interval '95 seconds' WHERE id = %s",
        (running.id,),
    )
    shown = ok(aoer("jobs", "show", str(running.id)))
    assert re.search(r"running for 9[5-9]s; its lease runs out in [12]\ds \(renewed while worker"
                     r" cli-test lives\)", shown), shown  # fmt: skip
    assert json.loads(ok(aoer("jobs", "show", str(running.id), "--json")))["leaseExpiresAt"]
    await conn.execute(
        "UPDATE aoer_queue SET lease_expires_at = now() - interval '40 seconds' WHERE id = %s",
        (running.id,),
    )
    shown = ok(aoer("jobs", "show", str(running.id)))
    assert "its lease ran out 4" in shown
    assert (
        "worker cli-test has not renewed it (gone, or still in the batch that holds the job"
        in shown
    )
    assert "once that worker stops heartbeating, or 600s past the lease" in shown
    await conn.execute("DELETE FROM aoer_queue WHERE id = %s", (running.id,))

    assert "queued again" in ok(aoer("jobs", "retry", str(job.id)))
    refused = aoer("jobs", "retry", str(job.id))
    assert refused.returncode == 1
    assert "only a failed job can be retried" in refused.stderr
    # `pending`, as `aoer status` names a waiting job, is `queued` here too.
    pending = json.loads(ok(aoer("jobs", "list", "--status", "pending", "--json")))
    assert [(j["id"], j["status"]) for j in pending["jobs"]] == [(str(job.id), "queued")]
    # It fails again: its attempts start over, and `jobs show` says where they did.
    [again] = await session.jobs.claim("cli-test", 1)
    await queue.fail(session, "cli-test", [(again, "poisoned again")])
    lines = ok(aoer("jobs", "show", str(job.id))).splitlines()
    reset = lines.index("  -- attempts started over (a retry)")
    assert "poisoned tenant" in lines[reset - 1]
    assert "poisoned again" in lines[reset + 1]
    assert "queued again" in ok(aoer("jobs", "retry", str(job.id)))
    assert "cancelled" in ok(aoer("jobs", "cancel", str(job.id)))
    assert await scalar(conn, "SELECT count(*) FROM aoer_queue") == 0
    actor = await scalar(conn, "SELECT string_agg(actor || ' ' || action, ',') FROM audit_log")
    assert actor.count("cli:") == 3
    assert "job.retry" in actor
    assert "job.cancel" in actor

    for args, message in (
        (("jobs", "show", "nope"), "malformed job id"),
        (("jobs", "show", str(UUID(int=1))), "unknown job"),
        (("jobs", "list", "--status", "done"), "unknown status"),
        (("jobs", "list", "--priority", "asap"), "unknown priority"),
        (("jobs", "list", "--before", "garbage"), "malformed cursor"),
    ):
        result = aoer(*args)
        assert result.returncode == 1, args  # bad input, alike
        assert message in result.stderr, (args, result.stderr)
