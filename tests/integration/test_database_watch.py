"""`aoer worker` and `aoer serve` while their database is away (bootstrap/watch.py,
`quiet_while_down`): one warning when it goes, a reminder while it stays away, one when it
is back with how many of the process's own retry warnings it held back meanwhile. They used
to write several warnings a second (the pool, the listeners, the delivery loop) and never
say that the database was down, nor that it was back."""

import asyncio
import logging
import re
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aoer.bootstrap import watch as watch_module
from aoer.bootstrap.watch import DatabaseWatch, quiet_while_down
from aoer.db.pool import Pool, connect
from aoer.store import Store
from tests.conftest import eventually


async def refuse_connections(
    admin: psycopg.AsyncConnection[object], name: str, allow: bool
) -> None:
    await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allow).lower()}')
    if not allow:  # and end those there are, as a stopped server does
        await admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )


async def test_the_database_going_and_coming_back_is_told_once_each_and_retries_held_back(
    pool: Pool, db_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_module, "REMIND_EVERY_S", 1.0)
    name = conninfo_to_dict(db_url)["dbname"]
    assert isinstance(name, str)
    admin = await psycopg.AsyncConnection.connect(
        make_conninfo(db_url, dbname="postgres"), autocommit=True
    )
    retrier = logging.getLogger("aoer.worker.test_retrier")
    caplog.set_level(logging.INFO)
    try:
        async with quiet_while_down(Store(pool, db_url)) as watch:
            await refuse_connections(admin, name, allow=False)
            await eventually(lambda: watch.down, "the watch finds the database down")
            retrier.warning("worker slot 0: the database is unavailable; retrying")
            await eventually(lambda: "still unreachable" in caplog.text, "a reminder", 5)
            await refuse_connections(admin, name, allow=True)
            await eventually(lambda: not watch.down, "the watch finds the database back", 15)
    finally:
        await refuse_connections(admin, name, allow=True)
        await admin.close()
    told = [r.getMessage() for r in caplog.records if r.name == watch_module.__name__]
    assert len(told) >= 3, told
    assert told[0].startswith("[AOER] database unreachable (")
    assert told[0].endswith(
        "retrying until it is back, the retries' own warnings held back meanwhile"
    )
    assert all(m.startswith("[AOER] database still unreachable after ") for m in told[1:-1])
    assert re.fullmatch(
        r"\[AOER\] database reachable again after \d+s \(\d+ warnings? held back\)", told[-1]
    ), told[-1]
    assert "worker slot 0" not in caplog.text, "the retry's warning was held back"
    assert watch._conn is None, "its own ping connection is closed on leaving"


def never_lost(pool: Pool, db_url: str) -> DatabaseWatch:
    return DatabaseWatch(
        Store(pool, db_url), embedded_home=None, grace_s=float("inf"), on_lost=lambda: None
    )


async def test_a_cancel_arriving_as_a_ping_completes_ends_the_watch(
    pool: Pool, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch's ping awaited `asyncio.wait_for`, which on Python 3.11 swallows a cancel
    arriving as what it awaits completes: the watch then ran on, and the `aoer worker --drain`
    it belonged to never exited after its last batch (a CI run timed out on it)."""
    watch = never_lost(pool, db_url)
    conn = await connect(db_url, autocommit=True)
    execute = conn.execute
    pinged = asyncio.Event()

    async def ping_then_cancel_the_watch(*args: Any, **kwargs: Any) -> Any:
        result = await execute(*args, **kwargs)
        if not pinged.is_set():
            pinged.set()
            task.cancel()  # the ping's answer is in: the cancel and it arrive together
        return result

    monkeypatch.setattr(conn, "execute", ping_then_cancel_the_watch)
    watch._conn = conn
    task = watch.start()
    try:
        async with asyncio.timeout(10):
            await asyncio.wait({task})
        assert pinged.is_set()
        assert task.cancelled(), "the watch ran on past its cancel"
    finally:
        await watch.stop()
    assert conn.closed


async def test_leaving_quiet_while_down_ends_a_watch_that_swallowed_its_cancel(
    pool: Pool, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However the watch came to swallow a cancel (a library's own `wait_for`), leaving the
    block ends it: it is cancelled again until it stops, not awaited for ever."""
    swallowed = asyncio.Event()
    run = DatabaseWatch.run

    async def run_swallowing_one_cancel(self: DatabaseWatch) -> None:
        try:
            await run(self)
        except asyncio.CancelledError:
            swallowed.set()
        await run(self)

    monkeypatch.setattr(DatabaseWatch, "run", run_swallowing_one_cancel)
    async with asyncio.timeout(10):
        async with quiet_while_down(Store(pool, db_url)) as watch:
            await eventually(lambda: watch._conn is not None, "the watch's first ping")
    assert swallowed.is_set()
    assert watch._conn is None, "its own ping connection is closed on leaving"
