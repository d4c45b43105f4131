"""Real worker processes: a SIGKILL mid-batch loses nothing; four workers complete each job once."""

import re
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.acceptance.conftest import AoerCli, start_aoer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WAIT_S = 120


def scalar(db_url: str, sql: str) -> object:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def seed_fleet(db_url: str, tenants: int) -> None:
    """Tenants with 20 days of varied signals each, generated in SQL."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO tenants (name) SELECT 'Dealer ' || g FROM generate_series(1, %s) g",
            (tenants,),
        )
        conn.execute(
            """
            INSERT INTO aiv_raw_signals (dealer_id, date, aeo, geo, ugc)
            SELECT t.id, current_date - d,
                   round((random() * 100)::numeric, 2), round((random() * 100)::numeric, 2),
                   round((random() * 100)::numeric, 2)
            FROM tenants t CROSS JOIN generate_series(0, 19) d
            """
        )


def wait_for(check: "object", what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def wait_all(
    db_url: str, workers: list[subprocess.Popen[str]], logs: list[Path], seconds: float
) -> list[int]:
    """The workers' exit codes; within `seconds` (under the test's own timeout), else a
    failure saying which still ran, what each last logged and where the queue stood."""
    deadline = time.monotonic() + seconds
    try:
        return [w.wait(max(0.1, deadline - time.monotonic())) for w in workers]
    except subprocess.TimeoutExpired:
        running = [log.name for w, log in zip(workers, logs, strict=True) if w.poll() is None]
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGUSR1)  # each logs where its tasks wait
        time.sleep(2)
        for w in workers:
            w.kill()
            w.wait(10)
        with psycopg.connect(db_url) as conn:
            statuses = conn.execute(
                "SELECT status, count(*) FROM aoer_queue GROUP BY status ORDER BY status"
            ).fetchall()
        tails = "\n".join(
            f"--- {log.name}:\n" + "\n".join(log.read_text().splitlines()[-30:]) for log in logs
        )
        pytest.fail(
            f"{', '.join(running)} still running after {seconds:.0f}s; queue {statuses}\n{tails}"
        )


def assert_every_summary_correct(db_url: str) -> None:
    """Each stored summary equals a fresh recomputation from the signals."""
    mismatches = scalar(
        db_url,
        """
        SELECT count(*)
        FROM tenants t
        LEFT JOIN aoer_summary s ON s.tenant_id = t.id
        LEFT JOIN aoer_compute_scores(ARRAY(SELECT id FROM tenants)) c ON c.tenant_id = t.id
        WHERE s.tenant_id IS NULL
           OR (s.aoer_score, s.visibility_risk, s.metrics)
              IS DISTINCT FROM (c.aoer_score, c.visibility_risk, c.metrics)
        """,
    )
    assert mismatches == 0


def test_worker_killed_mid_batch_loses_nothing(aoer: AoerCli, db_url: str, tmp_path: Path) -> None:
    seed_fleet(db_url, 1500)
    # Hold every batch open for a while so the kill lands inside one.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE slow_batches (on_ boolean);
            INSERT INTO slow_batches VALUES (true);
            CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM slow_batches) THEN PERFORM pg_sleep(3); END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER slow_batch AFTER INSERT ON metrics_events
                FOR EACH STATEMENT EXECUTE FUNCTION slow_batch();
            """
        )
    assert aoer("cron", "--once").returncode == 0
    # One batch in flight, so the kill lands in exactly one batch of 500.
    env = {
        "AOER_BATCH_SIZE": "500",
        "AOER_WORKER_CONCURRENCY": "1",
        "AOER_LEASE_SECONDS": "2",
        "AOER_LOG_EACH_TENANT": "false",
    }
    victim = start_aoer(db_url, tmp_path / "victim.log", "worker", **env)
    try:
        wait_for(
            lambda: scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE status = 'processing'"),
            "the first worker to claim a batch",
        )
        time.sleep(0.5)  # inside the batch statement
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    held = scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE status = 'processing'")
    assert held == 500, "the killed worker's batch is still claimed, not lost"
    assert scalar(db_url, "SELECT count(*) FROM metrics_events") == 0, "its batch rolled back"

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM slow_batches")
    # The dead worker's server session holds its rows until its statement ends; the rescuer's
    # lease keeper takes them back once the lease has expired and the rows are free.
    log = tmp_path / "rescuer.log"
    rescuer = start_aoer(db_url, log, "worker", **env)
    try:
        wait_for(
            lambda: (
                scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE status <> 'completed'") == 0
            ),
            "the second worker to finish every job",
        )
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(30) == 0
    rescued = log.read_text()
    assert "Took back 500 jobs" in rescued
    lost = [
        line for line in rescued.splitlines() if "[AOER] ❌ Failed recompute for tenant" in line
    ]
    assert len(lost) == 500, "each lost attempt is logged as a failed recompute"
    assert all("lease expired: worker" in line for line in lost)
    assert "Completed recompute for 0 tenants" not in rescued

    assert scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE status <> 'completed'") == 0
    assert scalar(db_url, "SELECT count(*) FROM aoer_queue") == 1500
    assert scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE retry_count = 1") == 500
    assert scalar(db_url, "SELECT count(*) FROM aoer_failures") == 500
    assert scalar(db_url, "SELECT count(*) FROM metrics_events") == 1500
    assert_every_summary_correct(db_url)


def test_four_workers_complete_20000_jobs_exactly_once(
    aoer: AoerCli, db_url: str, tmp_path: Path
) -> None:
    seed_fleet(db_url, 20_000)
    assert aoer("cron", "--once").returncode == 0
    env = {"AOER_BATCH_SIZE": "250", "AOER_LOG_EACH_TENANT": "false"}
    logs = [tmp_path / f"worker{i}.log" for i in range(4)]
    workers = [start_aoer(db_url, log, "worker", "--drain", **env) for log in logs]
    codes = wait_all(db_url, workers, logs, WAIT_S)
    assert codes == [0, 0, 0, 0]
    assert scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE status = 'completed'") == 20_000
    assert scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE status <> 'completed'") == 0
    assert scalar(db_url, "SELECT count(*) FROM metrics_events") == 20_000
    assert (
        scalar(db_url, "SELECT count(DISTINCT event_data ->> 'jobId') FROM metrics_events")
        == 20_000
    )
    assert (
        scalar(
            db_url,
            "SELECT count(*) FROM aoer_queue q WHERE NOT EXISTS (SELECT 1 FROM metrics_events e"
            " WHERE e.event_data ->> 'jobId' = q.id::text)",
        )
        == 0
    )
    busy = scalar(db_url, "SELECT count(DISTINCT locked_by) FROM aoer_queue")
    assert busy == 4, "every worker took part"
    assert_every_summary_correct(db_url)


def test_sigusr1_logs_where_each_task_of_a_worker_waits(db_url: str, tmp_path: Path) -> None:
    """For a worker that seems stuck: `kill -USR1` lists its tasks, each with its chain of
    awaits, and the worker goes on."""
    log = tmp_path / "worker.log"
    worker = start_aoer(db_url, log, "worker")
    try:
        wait_for(lambda: "worker active" in log.read_text(), "the worker to start")
        worker.send_signal(signal.SIGUSR1)
        wait_for(lambda: "aoer-database-watch: " in log.read_text(), "the tasks' list")
        text = log.read_text()
        listed = re.search(r"\[AOER\] (\d+) tasks, each where it waits \(SIGUSR1\):", text)
        assert listed is not None, text
        tasks = re.findall(r"\[AOER\]   (\S+): (.+)", text)
        assert len(tasks) == int(listed[1]), tasks
        where = dict(tasks)
        assert where["aoer-database-watch"].startswith("run (watch.py:"), where
        assert where["aoer-heartbeat"].startswith("_heartbeat (loop.py:"), where
        assert worker.poll() is None, "the worker goes on"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def test_sigterm_lets_the_worker_exit_cleanly(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    worker = start_aoer(db_url, log, "worker")
    wait_for(lambda: "worker active" in log.read_text(), "the worker to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    # Said when the signal arrives, not only at the end (a batch in hand may take a while).
    assert re.search(
        r"stopping: claiming nothing more, finishing \d+ jobs in hand", log.read_text()
    )
    assert "stopped" in log.read_text()
