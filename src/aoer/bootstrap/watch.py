"""The watch on a process's database: for `aoer up`, one clear exit when it goes away, not a
loop of retries; for `aoer worker` and `aoer serve` (`quiet_while_down`), which keep
retrying, one line when it goes, a reminder a minute, and one when it is back.

Without it, a database stopped underneath `aoer up` (`aoer down` from another terminal, a
crash, an external server gone for good) left the process up, answering 503 and logging a
few hundred warnings with tracebacks a minute, and slow to stop. The watch pings the database
every WATCH_EVERY_S. An embedded server whose process is gone is lost at once; any database
that does not answer for `grace_s` is lost then (an external one may be restarting). While
it does not answer, the process's own retry warnings are held back (`QuietWhileDown`): the
watch says once that the database is unreachable, once a minute while it stays away, and once
more when it is back (with how many warnings it held back) or lost.
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from aoer.db.embedded import DATA_FOLDER, embedded_pid
from aoer.db.pool import Connection, connect
from aoer.errors import DatabaseError
from aoer.store import Store
from aoer.waiting import cancel_all
from aoer.wording import plural

logger = logging.getLogger(__name__)

WATCH_EVERY_S: Final = 0.5
PING_TIMEOUT_S: Final = 0.5  # waiting longer for a pooled connection only delays the news
CONNECT_TIMEOUT_S: Final = 2.0  # a connection of its own, when the pool had none to spare
EMBEDDED_POLL_S: Final = 0.1  # while a ping waits: is the embedded server's process gone?
REMIND_EVERY_S: Final = 60.0  # while the database stays away, said again this often


class DatabaseWatch:
    """Pings the database until it is lost; then calls `on_lost` once and ends."""

    def __init__(
        self,
        store: Store,
        *,
        embedded_home: Path | None,
        grace_s: float,
        on_lost: Callable[[], None],
    ) -> None:
        self.store = store
        self.embedded_home = embedded_home
        self.grace_s = grace_s  # math.inf: never lost, only down (`aoer worker`, `aoer serve`)
        self.on_lost = on_lost
        self.down_since: float | None = None
        self.lost: str | None = None  # why, once lost: the process's last words
        self.held_back = 0  # other loggers' warnings held back while down (QuietWhileDown)
        self._told_at = 0.0
        self._conn: Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "asyncio.Task[None]":
        self._task = asyncio.create_task(self.run(), name="aoer-database-watch")
        return self._task

    async def stop(self) -> None:
        """End the watch and close its connection. Awaited, not only cancelled: a ping in
        flight is cancelled on the server before the loop closes (else the loop's final sweep
        interrupts that cancellation, and psycopg warns it closed the connection). Cancelled
        until it ends (`cancel_all`): a watch that swallowed its one cancel ran on, and
        `aoer worker --drain` never exited after its last batch."""
        if self._task is not None:
            await cancel_all([self._task])
        await self.close()

    @property
    def own_connection(self) -> bool:
        """A watch that is never lost (`quiet_while_down`: a process that keeps running)
        pings on a connection of its own, kept open, not the pool's, whose connections a
        busy worker's batches hold (a pooled ping then timed out and a new connection was
        opened every cycle)."""
        return math.isinf(self.grace_s)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.lost is None:
            problem = await self._problem()
            now = loop.time()
            if problem is None:
                if self.down_since is not None:
                    held = f" ({plural(self.held_back, 'warning')} held back)"
                    logger.warning(
                        "[AOER] database reachable again after %.0fs%s",
                        now - self.down_since,
                        held if self.held_back else "",
                        extra={"action": "database_up"},
                    )
                self.down_since = None
                self.held_back = 0
            else:
                gone = self._embedded_gone()
                if self.down_since is None:
                    self.down_since = self._told_at = now
                    if not gone:
                        self._tell_down(problem)
                elif now - self._told_at >= REMIND_EVERY_S:
                    self._told_at = now
                    logger.warning(
                        "[AOER] database still unreachable after %.0fs (%s)",
                        now - self.down_since,
                        problem,
                        extra={"action": "database_down"},
                    )
                if gone or now - self.down_since >= self.grace_s:
                    self.lost = gone or (
                        f"the database has been unreachable for {self.grace_s:.0f}s "
                        f"({problem}): `aoer up` stopped; start it again once the database is back"
                    )
                    self.on_lost()
                    return
            await asyncio.sleep(WATCH_EVERY_S)

    def _tell_down(self, problem: str) -> None:
        if math.isinf(self.grace_s):
            logger.warning(
                "[AOER] database unreachable (%s); retrying until it is back, the retries'"
                " own warnings held back meanwhile",
                problem,
                extra={"action": "database_down"},
            )
        else:
            logger.warning(
                "[AOER] database unreachable (%s); `aoer up` exits if it stays away for %.0fs",
                problem,
                self.grace_s,
                extra={"action": "database_down"},
            )

    def _embedded_gone(self) -> str | None:
        home = self.embedded_home
        if home is None or embedded_pid(home) is not None:
            return None
        return (
            f"the embedded PostgreSQL in {home.resolve() / DATA_FOLDER} stopped underneath "
            "`aoer up` (was `aoer down` run?): `aoer up` stopped; run `aoer up` again to "
            "start both"
        )

    async def _own_ping(self) -> str | None:
        """Ping on the watch's own connection (opened again after a failure).

        `asyncio.timeout`, not `wait_for`, around each step: on Python 3.11 `wait_for`
        swallows a cancellation arriving as the ping completes (waiting.py)."""
        try:
            if self._conn is None or self._conn.closed:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    self._conn = await connect(self.store.database_url, autocommit=True)
            async with asyncio.timeout(PING_TIMEOUT_S * 2):
                await self._conn.execute("SELECT 1")
        except Exception as exc:  # whatever failed, the database did not answer
            await self.close()
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return text or "no answer"
        return None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _problem(self) -> str | None:
        if self.own_connection:
            return await self._own_ping()
        gone = self._embedded_gone()
        if gone is not None:
            return "its server process is gone"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PING_TIMEOUT_S * 2
        ping = asyncio.ensure_future(self.store.ping(timeout_s=PING_TIMEOUT_S))
        try:
            while not ping.done():
                # A server that stopped leaves pings hanging: its process's end is news sooner.
                await asyncio.wait({ping}, timeout=EMBEDDED_POLL_S)
                if not ping.done() and self._embedded_gone():
                    return "its server process is gone"
                if not ping.done() and loop.time() > deadline:
                    raise DatabaseError(f"no answer to a ping in {PING_TIMEOUT_S * 2:.0f}s")
            ping.result()
        except Exception as exc:  # whatever failed, the database did not answer
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            return None
        finally:
            if not ping.done():
                ping.cancel()
                await asyncio.gather(ping, return_exceptions=True)
        # Every pooled connection busy is load, not loss: a connection of its own decides.
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                conn = await connect(self.store.database_url)
        except DatabaseError as exc:
            return str(exc).splitlines()[0]  # says more than the pool's timeout
        except Exception:
            return problem
        await conn.close()
        return None


class QuietWhileDown(logging.Filter):
    """Holds back other loggers' warnings and errors while the watch finds the database
    down (every part of the process retries and says so, with tracebacks); counts them."""

    def __init__(self, watch: DatabaseWatch) -> None:
        super().__init__()
        self.watch = watch
        self.held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == __name__ or record.levelno < logging.WARNING or not self.watch.down:
            return True
        self.held_back += 1
        self.watch.held_back += 1
        return False


@contextlib.asynccontextmanager
async def quiet_while_down(store: Store) -> AsyncIterator[DatabaseWatch]:
    """For the long-running `aoer worker` and `aoer serve`: while the database does not
    answer, say so once (and once a minute), hold back every part's own retry warnings, and
    say when it is back. The process keeps retrying: it is never lost. Without it, a
    database restart wrote a few warnings a second, with nothing saying it was down or back."""
    watch = DatabaseWatch(store, embedded_home=None, grace_s=math.inf, on_lost=lambda: None)
    quiet = QuietWhileDown(watch)
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(quiet)
    watch.start()
    try:
        yield watch
    finally:
        await watch.stop()
        for handler in handlers:
            handler.removeFilter(quiet)
