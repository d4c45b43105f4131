"""The four scenarios of issue 11, each returning its row of the table.

a. SIGKILL workers repeatedly during a drain.
b. SIGSTOP a worker inside a transaction while clients enqueue for the tenants it holds.
c. `pg_ctl restart` (-m fast, -m immediate) during a drain, with clients on the API.
d. A short lease, several workers, every core kept busy by other processes.
"""

import os
import random
import subprocess
import threading
import time
from uuid import UUID

from chaos_fleet import Proc, aoer_cmd
from chaos_stage import READY_TIMEOUT_S, Answer, Context, Row, Stage, Target, wait_for

HUNG_GRACE_S = 1.0  # observed past lease + 10 s before the hung worker is resumed
CATCH_TIMEOUT_S = 20.0  # how long to try to stop the worker with a claim still open
SETTLE_S = 0.2  # after SIGSTOP, before checking what the stopped worker still holds open
AFTER_RESUME_S = 2.0
WARM_REQUESTS = 40  # concurrent requests before a restart, half at a time
CLIENT_TIMEOUT_S = 60.0
LATENCY_TARGET_S = 1.0
READY_TARGET_S = 5.0
FAILED_PER_RESTART = 1
PROCESSING_BY_WORKER_SQL = """
SELECT locked_by, count(*) FROM aoer_queue WHERE status = 'processing' GROUP BY locked_by
"""
HELD_SQL = """
SELECT id, tenant_id, status FROM aoer_queue
WHERE status = 'processing' AND locked_by LIKE %(pattern)s
"""
# Rows an open transaction of the worker has locked; an uncommitted claim still reads
# `queued` to everyone else, and SKIP LOCKED claims pass it by.
LOCKED_SQL = """
SELECT q.id, q.tenant_id, q.status
FROM pgrowlocks('aoer_queue') AS l
JOIN aoer_queue q ON q.ctid = l.locked_row
WHERE l.pids && %(pids)s::int[]
"""
PACE_SQL = """
WITH span AS (
    SELECT coalesce(to_timestamp(%(since)s::float8), min(started_at)) AS since,
           to_timestamp(%(until)s::float8) AS until
    FROM aoer_queue
)
SELECT count(q.id), extract(epoch FROM span.until - span.since)::float8
FROM span LEFT JOIN aoer_queue q
  ON q.status = 'completed' AND q.completed_at >= span.since AND q.completed_at < span.until
GROUP BY span.since, span.until
"""
OPEN_TRANSACTIONS_SQL = """
SELECT pid, state FROM pg_stat_activity
WHERE application_name = %(app)s AND xact_start IS NOT NULL
"""


def _pattern(proc: Proc) -> str:
    return f"%:{proc.pid}:%"  # worker ids are host:pid:hex


def _pid_of(worker_id: str) -> int | None:
    try:
        return int(worker_id.rsplit(":", 2)[1])
    except (IndexError, ValueError):
        return None


def _loadavg() -> str:
    return "load {:.1f}/{:.1f}".format(*os.getloadavg()[:2])


# a. ------------------------------------------------------------------------------------


def kill_workers(ctx: Context) -> Row:
    options = ctx.options
    row = Row("a. SIGKILL workers during a drain")
    stage = Stage(ctx, "a-sigkill", options.lease_s)
    try:
        stage.start(options.workers)
        # At least --jobs, and more until the last kill: every kill lands mid-drain.
        feeder = stage.feed(options.jobs, endless=True)
        wait_for(lambda: stage.completed() > 0, READY_TIMEOUT_S)
        rng = random.Random(11)
        kills: list[float] = []
        in_hand = 0
        while len(kills) < options.kills:
            time.sleep(options.kill_every_s * rng.uniform(0.5, 1.5))
            stage.supervise()
            held = _held_per_worker(stage)
            victim = max(stage.fleet.live_workers(), key=lambda p: held.get(p.pid, 0))
            if not held.get(victim.pid):
                continue  # kill mid-batch only
            in_hand += held[victim.pid]
            kills.append(victim.sigkill())
            stage.worker()  # the supervisor starts a new one
        feeder.finish()  # up to --jobs, or what was queued by now if more
        stage.finish(row)
        row.notes.insert(
            0,
            f"{len(kills)} SIGKILLs every ~{options.kill_every_s:.0f} s, {in_hand} jobs in the"
            f" killed workers' hands; lease {options.lease_s:g} s; {_loadavg()}",
        )
        if kills and stage.drained_at is not None:
            row.recover = f"{stage.drained_at - kills[-1]:.1f}"
            row.notes.append("seconds to recover: last SIGKILL → every job finished")
    finally:
        stage.close()
    return row


def _held_per_worker(stage: Stage) -> dict[int, int]:
    held: dict[int, int] = {}
    for worker_id, count in stage.conn.execute(PROCESSING_BY_WORKER_SQL).fetchall():
        pid = _pid_of(str(worker_id))
        if pid is not None:
            held[pid] = int(str(count))
    return held


# b. ------------------------------------------------------------------------------------


def hung_worker(ctx: Context) -> Row:
    options = ctx.options
    row = Row("b. SIGSTOP a worker mid-batch")
    stage = Stage(ctx, "b-sigstop", options.lease_s)
    window_s = options.lease_s + 10 + HUNG_GRACE_S
    try:
        hung, *_ = stage.start(max(options.workers, 2), api=True)[1:]
        feeder = stage.feed(options.jobs, endless=True)
        wait_for(lambda: stage.completed() > 0, READY_TIMEOUT_S)
        where = _stop_inside_transaction(stage, hung, ctx.has_rowlocks)
        stopped_at = hung.stopped[-1][0]
        # The harness's own inserts end here, so they never meet the cron requests below
        # (two multi-row enqueues in different orders can deadlock each other).
        feeder.stop()
        feeder.join()
        held = _held(stage, hung, ctx.has_rowlocks)
        held_tenants = sorted({tenant for tenant, _ in held.values()}, key=str)
        row.notes.append(
            f"stopped {hung.name} inside {where}: it held {len(held)} jobs"
            f" ({sum(1 for _, s in held.values() if s == 'queued')} of them queued rows"
            f" locked by an open claim); lease {options.lease_s:g} s"
        )
        others = [t for t in ctx.tenant_ids[:2000] if t not in set(held_tenants)][:200]
        client = stage.client(_hung_loops(held_tenants, others, options.hung_clients))
        cron_cli: dict[str, object] = {}
        cron_thread = threading.Thread(
            target=_time_cron_cli, args=(stage, cron_cli, window_s + 60), daemon=True
        )
        cron_thread.start()
        back_s = _watch_held(stage, hung, set(held), stopped_at, window_s, ctx.has_rowlocks)
        resumed_at = hung.sigcont()
        time.sleep(AFTER_RESUME_S)
        stage.stop_client(client, CLIENT_TIMEOUT_S + 10)
        cron_thread.join(CLIENT_TIMEOUT_S)
        rate_before, _ = _pace(stage, None, stopped_at)
        rate_during, done_during = _pace(stage, stopped_at, resumed_at)
        row.notes.append(
            f"the other worker(s) while it was stopped: {done_during} jobs completed,"
            f" {rate_during:.0f}/s (before the stop: {rate_before:.0f}/s); resumed after"
            f" {resumed_at - stopped_at:.1f} s"
        )
        answers = stage.answers()
        _report_hung_clients(row, answers, stopped_at, resumed_at, cron_cli)
        budget = options.lease_s + 10
        if back_s is None:
            row.recover = f">{window_s:.0f}"
            measured = f"not back {window_s:.0f} s after SIGSTOP (held until resumed)"
        else:
            row.recover = f"{back_s:.1f}"
            measured = f"back after {back_s:.1f} s"
        row.notes.append("seconds to recover: SIGSTOP → every job it held back in play")
        row.targets.append(
            Target(
                f"stopped worker's jobs back within lease + 10 s ({budget:g} s)",
                measured,
                back_s is not None and back_s <= budget,
            )
        )
        stage.finish(row)
        row.five_xx = sum(1 for a in answers if a.status >= 500)
    finally:
        stage.close()
    return row


def _pace(stage: Stage, since: float | None, until: float) -> tuple[float, int]:
    """Jobs completed per second between `since` (None: the first claim) and `until`."""
    row = stage.conn.execute(PACE_SQL, {"since": since, "until": until}).fetchone()
    assert row is not None
    done, seconds = int(str(row[0])), float(str(row[1] or 0))
    return (done / seconds if seconds > 0 else 0.0), done


def _stop_inside_transaction(stage: Stage, proc: Proc, rowlocks: bool) -> str:
    """SIGSTOP `proc` while one of its transactions is open, preferably a claim that has
    locked queued rows (the case of issue 11); after CATCH_TIMEOUT_S, any open transaction
    while it holds jobs."""
    deadline = time.monotonic() + CATCH_TIMEOUT_S
    args = {"app": proc.app_name}
    while True:
        if time.monotonic() > deadline + READY_TIMEOUT_S:
            raise RuntimeError(f"{proc.name} never had a transaction open to be stopped in")
        rows = stage.conn.execute(OPEN_TRANSACTIONS_SQL, args).fetchall()
        if not any(state == "idle in transaction" for _, state in rows):
            continue
        proc.sigstop()
        # A COMMIT already sent lands after the stop: look once the socket has drained.
        time.sleep(SETTLE_S)
        rows = stage.conn.execute(OPEN_TRANSACTIONS_SQL, args).fetchall()
        pids = [int(str(pid)) for pid, _ in rows]
        locked_queued = 0
        if rowlocks and pids:
            locked = stage.conn.execute(LOCKED_SQL, {"pids": pids}).fetchall()
            locked_queued = sum(1 for *_, status in locked if status == "queued")
        if locked_queued:
            return f"an open claim ({len(rows)} open transaction(s))"
        late = time.monotonic() > deadline or not rowlocks
        if rows and late and _held(stage, proc, rowlocks):
            return f"{len(rows)} open transaction(s), no open claim caught"
        proc.sigcont()
        time.sleep(0.001)


def _held(stage: Stage, proc: Proc, rowlocks: bool) -> dict[UUID, tuple[UUID, str]]:
    """job id → (tenant, committed status) for every job the worker holds or has locked."""
    held = {
        UUID(str(i)): (UUID(str(t)), str(s))
        for i, t, s in stage.conn.execute(HELD_SQL, {"pattern": _pattern(proc)}).fetchall()
    }
    if rowlocks:
        pids = [
            int(str(pid))
            for pid, _ in stage.conn.execute(
                OPEN_TRANSACTIONS_SQL, {"app": proc.app_name}
            ).fetchall()
        ]
        for i, t, s in stage.conn.execute(LOCKED_SQL, {"pids": pids}).fetchall():
            held[UUID(str(i))] = (UUID(str(t)), str(s))
    return held


def _watch_held(
    stage: Stage, proc: Proc, held: set[UUID], since: float, window_s: float, rowlocks: bool
) -> float | None:
    """Seconds after `since` until none of `held` is still held by `proc`; None: not in time."""
    while time.time() - since < window_s:
        if not held & set(_held(stage, proc, rowlocks)):
            return time.time() - since
        time.sleep(0.5)
    return None


def _hung_loops(held: list[UUID], others: list[UUID], threads: int) -> list[dict[str, object]]:
    def bodies(tenants: list[UUID], priority: str) -> list[dict[str, str]]:
        return [{"tenantId": str(t), "priority": priority} for t in tenants]

    return [
        {
            "kind": "enqueue (held tenant)",
            "method": "POST",
            "path": "/api/aoer/queue",
            "bodies": bodies(held, "high"),
            "threads": threads,
            "interval_s": 0.2,
        },
        {
            "kind": "enqueue (other tenant)",
            "method": "POST",
            "path": "/api/aoer/queue",
            "bodies": bodies(others, "medium"),
            "threads": 1,
            "interval_s": 0.5,
        },
        {"kind": "cron", "method": "GET", "path": "/api/aoer/cron", "threads": 1, "interval_s": 2},
        {"kind": "readyz", "method": "GET", "path": "/readyz", "threads": 1, "interval_s": 0.5},
    ]


def _time_cron_cli(stage: Stage, out: dict[str, object], timeout_s: float) -> None:
    """`aoer cron --once` while the worker is stopped: how long it takes to answer."""
    start = time.monotonic()
    try:
        done = subprocess.run(
            aoer_cmd("cron", "--once"),
            env=stage.ctx.env,
            cwd=stage.ctx.root,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        out["code"] = done.returncode
    except subprocess.TimeoutExpired:
        out["code"] = "timeout"
    out["seconds"] = time.monotonic() - start


def _report_hung_clients(
    row: Row,
    answers: list[Answer],
    stopped_at: float,
    resumed_at: float,
    cron_cli: dict[str, object],
) -> None:
    during = [a for a in answers if stopped_at <= a.start < resumed_at]
    parts = []
    for kind in sorted({a.kind for a in during}):
        mine = [a for a in during if a.kind == kind]
        slow = sum(1 for a in mine if a.seconds > LATENCY_TARGET_S)
        failed = sum(1 for a in mine if a.failed)
        parts.append(
            f"{kind}: {len(mine)} sent, max {max(a.seconds for a in mine):.2f} s,"
            f" {slow} over {LATENCY_TARGET_S:g} s, {failed} failed"
        )
    row.notes.append("clients while it was stopped: " + "; ".join(parts))
    if "seconds" in cron_cli:
        row.notes.append(
            f"`aoer cron --once` while it was stopped: {float(str(cron_cli['seconds'])):.2f} s,"
            f" exit {cron_cli.get('code')}"
        )
    worst = max((a.seconds for a in during), default=0.0)
    if "seconds" in cron_cli:
        worst = max(worst, float(str(cron_cli["seconds"])))
    row.targets.append(
        Target(
            f"no client-facing request waits > {LATENCY_TARGET_S:g} s on a hung worker",
            f"slowest {worst:.2f} s",
            worst <= LATENCY_TARGET_S,
        )
    )


# c. ------------------------------------------------------------------------------------


def restart_database(ctx: Context, mode: str) -> Row:
    options = ctx.options
    row = Row(f"c. pg_ctl restart -m {mode} mid-drain")
    stage = Stage(ctx, f"c-restart-{mode}", options.lease_s)
    try:
        stage.start(options.workers, api=True)
        sample = ctx.tenant_ids[:500]
        client = stage.client(_low_traffic_loops(sample))
        # A busy spell fills the API's pool, then traffic is low again, as in the issue.
        stage.burst(f"/api/aoer/queue?tenantId={sample[1]}", WARM_REQUESTS, WARM_REQUESTS // 2)
        stage.feed(options.jobs)
        # Mid-drain: batches in flight and some already done.
        wait_for(lambda: stage.completed() > 0 and stage.processing() > 0, READY_TIMEOUT_S, 0.02)
        down_at = time.time()
        ctx.cluster.restart(mode)
        up_at = time.time()
        stage.reconnect()

        def ready_again() -> bool:
            return any(
                a.kind == "readyz" and a.start >= up_at and a.status == 200 for a in stage.answers()
            )

        wait_for(ready_again, options.readyz_cap_s, 0.1)
        time.sleep(1.0)
        stage.stop_client(client)
        answers = stage.answers()
        ready = [
            a.end for a in answers if a.kind == "readyz" and a.start >= up_at and a.status == 200
        ]
        after = [a for a in answers if a.start >= up_at and a.failed]
        while_down = [a for a in answers if down_at <= a.start < up_at and a.failed]
        ready_s = min(ready) - up_at if ready else None
        row.recover = f"{ready_s:.1f}" if ready_s is not None else f">{options.readyz_cap_s:.0f}"
        row.notes.append(
            f"API pool warmed by {WARM_REQUESTS} requests ({WARM_REQUESTS // 2} at a time), then"
            f" ~4 requests/s; pg_ctl restart -m {mode} took {up_at - down_at:.1f} s;"
            f" {len(while_down)} requests"
            f" failed while it ran; {len(after)} failed after the database was back"
            + (f" ({_kinds(after)}; first: {after[0].error})" if after else "")
        )
        row.notes.append("seconds to recover: database accepting connections → /readyz 200")
        row.targets.append(
            Target(
                f"≤ {FAILED_PER_RESTART} failed request per API process per restart",
                f"{len(after)} failed after the restart (1 API process)",
                len(after) <= FAILED_PER_RESTART,
            )
        )
        row.targets.append(
            Target(
                f"/readyz 200 within {READY_TARGET_S:g} s of the database",
                f"{ready_s:.1f} s" if ready_s is not None else f"not within {row.recover} s",
                ready_s is not None and ready_s <= READY_TARGET_S,
            )
        )
        stage.finish(row)
        row.five_xx = sum(1 for a in answers if a.status >= 500)
    finally:
        stage.close()
    return row


def _kinds(answers: list[Answer]) -> str:
    counts: dict[str, int] = {}
    for a in answers:
        counts[a.kind] = counts.get(a.kind, 0) + 1
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))


def _low_traffic_loops(tenants: list[UUID]) -> list[dict[str, object]]:
    return [
        {
            "kind": "enqueue",
            "method": "POST",
            "path": "/api/aoer/queue",
            "bodies": [{"tenantId": str(t)} for t in tenants],
            "threads": 1,
            "interval_s": 1.0,
        },
        {
            "kind": "queue status",
            "method": "GET",
            "path": f"/api/aoer/queue?tenantId={tenants[0]}",
            "threads": 1,
            "interval_s": 1.0,
        },
        {"kind": "readyz", "method": "GET", "path": "/readyz", "threads": 1, "interval_s": 0.5},
    ]


# d. ------------------------------------------------------------------------------------


def short_lease(ctx: Context) -> Row:
    options = ctx.options
    row = Row(f"d. lease {options.short_lease_s:g} s, cores busy")
    stage = Stage(ctx, "d-short-lease", options.short_lease_s)
    try:
        workers = options.workers + 1
        stage.start(workers)
        stage.fleet.busy_loops(options.busy_loops)
        started = time.time()
        stage.feed(options.jobs)
        stage.finish(row)
        if stage.drained_at is not None:
            seconds = stage.drained_at - started
            row.notes.insert(
                0,
                f"{workers} workers and {options.busy_loops} busy-loop processes; drained in"
                f" {seconds:.1f} s ({row.jobs / seconds:.0f} jobs/s); {_loadavg()}",
            )
        row.targets.append(
            Target(
                "0 jobs taken back from live workers with a short lease",
                f"{row.taken_live}",
                row.taken_live == 0,
            )
        )
        row.targets.append(
            Target("0 jobs failed with a short lease", f"{row.failed}", row.failed == 0)
        )
    finally:
        stage.close()
    return row
