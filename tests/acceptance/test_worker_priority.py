"""`aoer worker` is background work: the process and its database sessions run at
AOER_WORKER_NICE, and the API's sessions at the normal priority (migration 0022)."""

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from tests.acceptance.conftest import start_aoer
from tests.conftest import IN_CI
from tests.integration.test_background_priority import has_extension

WAIT_S = 60


def test_a_worker_and_its_database_sessions_run_at_the_niceness_asked(
    db_url: str, tmp_path: Path
) -> None:
    if not has_extension(db_url):
        if IN_CI:
            pytest.fail("migration 0022 did not create the prioritize extension under CI=true")
        pytest.skip("this server has no prioritize extension (postgresql-15-prioritize)")
    log = tmp_path / "worker.log"
    worker = start_aoer(db_url, log, "worker", AOER_WORKER_NICE="6")
    try:
        deadline = time.monotonic() + WAIT_S
        while "worker active" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            assert worker.poll() is None, log.read_text()
            time.sleep(0.1)
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 6
        assert (
            "worker at CPU niceness 6 (AOER_WORKER_NICE), its database sessions at 6"
            in log.read_text()
        )
        with psycopg.connect(db_url) as conn:
            # A session the pool is still opening shows its name before it has lowered its
            # priority (the pool's configure step, before any use): wait for it.
            while True:
                rows = conn.execute(
                    "SELECT pid, get_backend_priority(pid) AS nice FROM pg_stat_activity"
                    " WHERE application_name = 'aoer worker' AND datname = current_database()"
                ).fetchall()
                if rows and {nice for _, nice in rows} == {6}:
                    break
                assert time.monotonic() < deadline, rows
                time.sleep(0.1)
            own = conn.execute("SELECT get_backend_priority(pg_backend_pid())").fetchone()
        assert own == (0,)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def test_a_worker_says_when_its_sessions_keep_the_normal_priority(
    db_url: str, owner_db_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS prioritize")
    log = tmp_path / "worker.log"
    worker = start_aoer(db_url, log, "worker", AOER_WORKER_NICE="4")
    try:
        deadline = time.monotonic() + WAIT_S
        while "worker active" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            assert worker.poll() is None, log.read_text()
            time.sleep(0.1)
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 4
        assert (
            "worker at CPU niceness 4 (AOER_WORKER_NICE), its database sessions at the "
            "server's normal priority (the server has no `prioritize` extension: migration 0022)"
        ) in log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
