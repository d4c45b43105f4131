"""`aoer worker` is background work: the process and its database sessions run at
AOER_WORKER_NICE, and the API's sessions at the normal priority (migration 0022); where the
kernel shares the CPU between sessions first, their autogroups too (migration 0027)."""

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.acceptance.conftest import start_aoer
from tests.acceptance.test_crash_and_concurrency import wait_for
from tests.integration.test_background_priority import (
    autogroup,
    autogroup_nice,
    require_autogroups,
    require_prioritize,
)


@contextmanager
def worker_at(
    db_url: str, log: Path, nice: int, new_session: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """A running `aoer worker` with AOER_WORKER_NICE=nice, past its start line; stopped (and
    required to exit 0) afterwards."""
    worker = start_aoer(db_url, log, "worker", new_session=new_session, AOER_WORKER_NICE=str(nice))
    try:
        wait_for(lambda: "worker active" in log.read_text(), "the worker to start")
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def worker_session_pids(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE application_name = 'aoer worker' AND datname = current_database()"
    ).fetchall()
    return [int(str(pid)) for (pid,) in rows]


def worker_session_priorities(conn: psycopg.Connection[tuple[object, ...]]) -> set[object]:
    rows = conn.execute(
        "SELECT get_backend_priority(pid) FROM unnest(%s::int[]) pid", (worker_session_pids(conn),)
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


def test_a_worker_that_leads_its_session_lowers_its_autogroup_and_its_sessions(
    db_url: str, tmp_path: Path
) -> None:
    require_autogroups()
    log = tmp_path / "worker.log"
    with worker_at(db_url, log, 6, new_session=True) as worker, psycopg.connect(db_url) as conn:
        assert autogroup_nice(worker.pid) == 6
        assert "this process's session at 6, its database sessions' at 6" in log.read_text()
        # Sessions the pool is still opening lower theirs before any use: wait for them.
        wait_for(
            lambda: {autogroup_nice(pid) for pid in worker_session_pids(conn)} == {6},
            "every 'aoer worker' session's autogroup at niceness 6",
        )
        own = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert own is not None
        assert autogroup_nice(int(str(own[0]))) == 0


def test_a_worker_in_another_processs_session_leaves_that_sessions_autogroup(
    db_url: str, tmp_path: Path
) -> None:
    require_autogroups()
    ours = autogroup()
    log = tmp_path / "worker.log"
    with worker_at(db_url, log, 6) as worker:
        # The session (this test's) is not the worker's to slow down.
        assert autogroup(worker.pid) == ours
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 6
        assert "this process's session at the normal priority (it does not lead its session" in (
            log.read_text()
        )
    assert autogroup() == ours
