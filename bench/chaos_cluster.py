"""A scratch PostgreSQL cluster for the chaos harness: initdb in a temp dir, removed after.

Trust auth, a free port on 127.0.0.1 and the unix socket inside the temp dir; it never
touches the shared server on 127.0.0.1:5432. Under root, initdb and pg_ctl run as `postgres`
(initdb refuses root), which is why the directory is handed to that user.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_BIN_ENV = "AOER_CHAOS_PG_BIN"
START_TIMEOUT_S = 60
DATABASE = "aoer"

# Enough connections for six workers (a pool of 10 + a listener each), the API and the
# harness; lock waits and the deadlock detector's reports go to the server log we grep.
SERVER_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 200
log_line_prefix = '%m [%p] %a '
log_lock_waits = on
logging_collector = off
"""


def pg_bin() -> Path:
    """Where initdb and pg_ctl live ($AOER_CHAOS_PG_BIN, else Debian's PostgreSQL 15)."""
    return Path(os.environ.get(PG_BIN_ENV, str(DEFAULT_PG_BIN)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScratchCluster:
    """initdb + pg_ctl in `root`; `url` is the `aoer` database over the unix socket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()
        self.bin = pg_bin()
        self.url = f"postgresql://postgres@/{DATABASE}?host={root}&port={self.port}"
        self.running = False

    def _run_as_owner(self, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        extra: dict[str, Any] = {}
        if os.geteuid() == 0:
            extra = {"user": "postgres", "group": "postgres"}
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
            **extra,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def create(self) -> None:
        if not (self.bin / "initdb").exists():
            raise RuntimeError(f"no initdb in {self.bin} (set {PG_BIN_ENV})")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.root.chmod(0o755)
        initdb = ("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self._run_as_owner(*initdb, "-E", "UTF8", "--locale=C", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(SERVER_SETTINGS.format(port=self.port, socket_dir=self.root))
        self.start()
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def admin_url(self) -> str:
        return self.url.replace(f"/{DATABASE}?", "/postgres?")

    def start(self) -> None:
        self._run_as_owner("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "start")
        self.running = True

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m MODE -w`: returns once the server accepts connections again."""
        # -l again: without it the new postmaster logs to pg_ctl's stdout (our pipe).
        restart = ("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode)
        self._run_as_owner(*restart, "-w", "restart")
        self.wait_ready()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")

    def version(self) -> str:
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def _kill_postmaster(self) -> None:
        """pg_ctl could not stop it: SIGKILL the postmaster (its backends follow it out)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        """Stop the server and remove the directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self) -> None:
        """Stop the server, immediately: it is scratch."""
        if self.running or (self.data / "postmaster.pid").exists():
            try:
                self._run_as_owner("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
            except Exception:
                self._kill_postmaster()
            self.running = False
