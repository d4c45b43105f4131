"""`aoer worker` is background work: the process and its database sessions run at
AOER_WORKER_NICE, and the API's sessions at the normal priority (migration 0022)."""

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.acceptance.conftest import start_aoer
from tests.acceptance.test_crash_and_concurrency import wait_for
from tests.integration.test_background_priority import require_prioritize


@contextmanager
def worker_at(db_url: str, log: Path, nice: int) -> Iterator[subprocess.Popen[str]]:
    """A running `aoer worker` with AOER_WORKER_NICE=nice, past its start line; stopped (and
    required to exit 0) afterwards."""
    worker = start_aoer(db_url, log, "worker", AOER_WORKER_NICE=str(nice))
    try:
        wait_for(lambda: "worker active" in log.read_text(), "the worker to start")
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def worker_session_priorities(conn: psycopg.Connection[tuple[object, ...]]) -> set[object]:
    rows = conn.execute(
        "SELECT get_backend_priority(pid) FROM pg_stat_activity"
        " WHERE application_name = 'aoer worker' AND datname = current_database()"
    ).fetchall()
    return {nice for (nice,) in rows}


def test_a_worker_and_its_database_sessions_run_at_the_niceness_asked(
    db_url: str, tmp_path: Path
) -> None:
    require_prioritize(db_url)
    log = tmp_path / "worker.log"
    with worker_at(db_url, log, 6) as worker, psycopg.connect(db_url) as conn:
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 6
        assert (
            "worker at CPU niceness 6 (AOER_WORKER_NICE), its database sessions at 6"
            in log.read_text()
        )
        # A session the pool is still opening shows its name before it has lowered its
        # priority (the pool's configure step, before any use): wait for it.
        wait_for(
            lambda: worker_session_priorities(conn) == {6},
            "every 'aoer worker' session in pg_stat_activity at niceness 6",
        )
        own = conn.execute("SELECT get_backend_priority(pg_backend_pid())").fetchone()
        assert own == (0,)


def test_a_worker_says_when_its_sessions_keep_the_normal_priority(
    db_url: str, owner_db_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS prioritize")
    log = tmp_path / "worker.log"
    with worker_at(db_url, log, 4) as worker:
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 4
        assert (
            "worker at CPU niceness 4 (AOER_WORKER_NICE), its database sessions at the "
            "server's normal priority (the server has no `prioritize` extension: migration 0022)"
        ) in log.read_text()
