"""Connections and pools: every session runs in UTC so `CURRENT_DATE` is the UTC date.

Each pool also sets the server-side limits its process kind needs (`SessionLimits`): how
long a statement may run, how long it may wait for a lock, how long a transaction may sit
idle. The last one is what ends the transactions of a worker that hangs (SIGSTOP, a stuck
host) so its rows stop blocking everyone else. TCP keepalives in both directions notice a
peer that vanished without closing its connection.
"""

import json
import logging
import select
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from time import monotonic
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from aoer.errors import DatabaseError

logger = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[dict[str, object]]
Pool = AsyncConnectionPool[Connection]

CONNECT_TIMEOUT_S = 10
# A pool whose server went away retries with doubling pauses; giving up an attempt after this
# long restarts the pauses at 1 s on the next request, so a restarted server is used again
# within seconds instead of after the minutes the backoff would otherwise reach.
RECONNECT_ATTEMPT_S = 4.0
# libpq's keepalives: a dead server host is noticed in about idle + interval × count.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
# A connection returned to its pool less than this long ago is lent without a round trip
# (unless the server has sent it something since): see `LendCheck`.
LEND_CHECK_BYPASS_S = 1.0


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Server-side limits for every connection of a pool, in milliseconds (0: none)."""

    statement_timeout_ms: int = 0
    lock_timeout_ms: int = 0
    idle_in_transaction_ms: int = 0
    # The server's keepalives toward this client: a vanished client host is noticed in
    # about idle + interval × count seconds.
    tcp_keepalives_idle_s: int = 10
    tcp_keepalives_interval_s: int = 5
    tcp_keepalives_count: int = 3
    # What pg_stat_activity shows for the pool's sessions ("aoer worker", "aoer api", ...)
    # unless DATABASE_URL or PGAPPNAME names them (libpq's fallback_application_name).
    application_name: str = "aoer"
    # Background work (0: none): each session lowers its own backend's CPU priority to this
    # niceness through the `prioritize` extension where the server has it (migration 0022),
    # so on a busy database host the API's statements go first (`lower_priority`).
    backend_nice: int = 0

    def settings(self) -> list[tuple[str, str]]:
        return [
            ("statement_timeout", str(self.statement_timeout_ms)),
            ("lock_timeout", str(self.lock_timeout_ms)),
            ("idle_in_transaction_session_timeout", str(self.idle_in_transaction_ms)),
            ("tcp_keepalives_idle", str(self.tcp_keepalives_idle_s)),
            ("tcp_keepalives_interval", str(self.tcp_keepalives_interval_s)),
            ("tcp_keepalives_count", str(self.tcp_keepalives_count)),
        ]


def redacted(url: str) -> str:
    """The URL with its password hidden, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _exact_json(text: str | bytes) -> object:
    """jsonb numbers as Decimal, so a stored 60.00 reads back as 60.00 and never as a float."""
    return json.loads(text, parse_float=Decimal)


async def _configure(conn: Connection, limits: SessionLimits | None = None) -> None:
    set_json_loads(_exact_json, conn)
    await conn.execute("SET TIME ZONE 'UTC'")
    if limits is not None:
        for name, value in limits.settings():
            await conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        if limits.backend_nice > 0:
            await lower_priority(conn, limits.backend_nice)
            await lower_session_autogroup(conn, limits.backend_nice)


async def lower_priority(conn: Connection, nice: int) -> int | None:
    """Lower this session's backend to CPU niceness `nice` (never raise it: only a superuser
    may) through the `prioritize` extension; the niceness it runs at, or None where the
    server does not have the extension (the backend keeps its priority).

    The server's own process renices itself, so this is right wherever the database runs, and
    a non-superuser can do it to its own backends only (the extension checks). Citus lowers
    the priority of its background backends the same way (`citus.cpu_priority`)."""
    cur = await conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'prioritize'"
    )
    row = await cur.fetchone()
    if row is None:
        return None
    schema = sql.Identifier(str(row["nspname"]))
    cur = await conn.execute(
        sql.SQL("SELECT {}.get_backend_priority(pg_backend_pid()) AS nice").format(schema)
    )
    found = await cur.fetchone()
    current = 0 if found is None else int(str(found["nice"]))
    if current >= nice:
        return current
    async with conn.transaction():
        # The extension says what it did in a NOTICE; the session's log needs none of it.
        await conn.execute("SET LOCAL client_min_messages = warning")
        cur = await conn.execute(
            sql.SQL("SELECT {}.set_backend_priority(pg_backend_pid(), %s) AS done").format(schema),
            (nice,),
        )
        done = await cur.fetchone()
    return nice if done is not None and done["done"] is True else current


async def lower_session_autogroup(conn: Connection, nice: int) -> int | None:
    """Lower the autogroup of this session's backend to niceness `nice` (never raise it)
    through `aoer_lower_session_autogroup` (migration 0027); the autogroup's niceness, or None
    where the database has no such function (migrated by a role that is not a superuser) or
    its kernel no autogroups.

    On Linux with autogroups on (Debian's and Ubuntu's default) the CPU is shared between
    sessions first, and every PostgreSQL backend leads its own: `lower_priority`'s niceness
    alone then ranks the backend only against itself. A kernel that refuses the change for
    longer than the function waits (it takes one every 100 ms, host-wide) leaves the backend
    where it was, with a warning: a slower API under a refresh, never a failed connection."""
    cur = await conn.execute(
        "SELECT to_regprocedure('aoer_lower_session_autogroup(integer,integer)') IS NOT NULL AS ok"
    )
    found = await cur.fetchone()
    if found is None or found["ok"] is not True:
        return None
    try:
        async with conn.transaction():
            cur = await conn.execute("SELECT aoer_lower_session_autogroup(%s) AS nice", (nice,))
            row = await cur.fetchone()
    except psycopg.DatabaseError as exc:
        logger.warning("a database session's autogroup kept its CPU priority: %s", exc)
        return None
    return None if row is None or row["nice"] is None else int(str(row["nice"]))


class LendCheck:
    """The pool's check of a connection it lends: an empty round trip, skipped for a
    connection returned less than `bypass_s` ago whose socket has nothing to read.

    The round trip is what replaces a dead connection after a server restart instead of
    failing a request. A server that ends a session (a restart, `pg_terminate_backend`, an
    idle timeout) first sends it an error and closes it, so its socket turns readable: such a
    connection, and any idle for longer than `bypass_s`, is still checked. Under load every
    connection comes back within milliseconds, and the round trip cost each lend a turn of
    a busy event loop: at 64 connections mixing cached reads and enqueues while workers
    drain, getting a connection took 42 ms of an enqueue's 108 ms at the median, 0.1 ms
    after (bench/README.md, "The enqueue, step by step"). HikariCP skips its
    validation the same way for connections used within the last 500 ms
    (`aliveBypassWindowMs`)."""

    def __init__(self, bypass_s: float = LEND_CHECK_BYPASS_S) -> None:
        self.bypass_s = bypass_s
        self._returned: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()
        self.round_trips = 0  # checks that asked the server (tests)

    async def returned(self, conn: Connection) -> None:
        """The pool's `reset` hook: called for every connection given back to it."""
        self._returned[conn] = monotonic()

    async def check(self, conn: Connection) -> None:
        """The pool's `check` hook: raises when the connection is dead."""
        at = self._returned.get(conn)
        if at is not None and monotonic() - at < self.bypass_s and not _has_input(conn):
            return
        self.round_trips += 1
        await AsyncConnectionPool.check_connection(conn)


def _has_input(conn: Connection) -> bool:
    """Whether the server sent this idle connection anything (or closed it): nothing is
    expected between statements, as none of the pool's sessions LISTENs."""
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.OperationalError):  # closed: let the check say so
        return True


async def connect(url: str, *, autocommit: bool = True) -> Connection:
    """One connection outside any pool (LISTEN, migrations, CLI one-shots)."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            url,
            autocommit=autocommit,
            row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_S,
            fallback_application_name=SessionLimits().application_name,
            **KEEPALIVES,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
    await _configure(conn)
    if not autocommit:
        await conn.commit()
    return conn


@asynccontextmanager
async def open_pool(
    url: str,
    *,
    max_size: int = 10,
    min_size: int = 1,
    limits: SessionLimits | None = None,
    open_timeout_s: float = CONNECT_TIMEOUT_S * 3,
    lend_check: LendCheck | None = None,
) -> AsyncIterator[Pool]:
    """A connection pool, opened and checked, closed on exit.

    Every connection is checked when it is lent (`LendCheck`): after a server restart a
    dead pooled connection is replaced instead of failing a request."""
    configure: Callable[[Connection], Awaitable[None]] = partial(_configure, limits=limits)
    lend_check = lend_check or LendCheck()
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=min(min_size, max_size),
        max_size=max_size,
        open=False,
        configure=configure,
        check=lend_check.check,
        reset=lend_check.returned,
        reconnect_timeout=RECONNECT_ATTEMPT_S,
        # Autocommit: reads leave no transaction open; writes say `conn.transaction()`.
        kwargs={
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "autocommit": True,
            "fallback_application_name": (limits or SessionLimits()).application_name,
            **KEEPALIVES,
        },
        connection_class=psycopg.AsyncConnection,
    )
    try:
        await pool.open(wait=True, timeout=open_timeout_s)
    except Exception as exc:
        await pool.close()
        raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()
