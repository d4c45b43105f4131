"""`aoer worker` and `aoer serve` while their database is away (bootstrap/watch.py,
`quiet_while_down`): one warning when it goes, a reminder while it stays away, one when it
is back with how many of the process's own retry warnings it held back meanwhile. They used
to write several warnings a second (the pool, the listeners, the delivery loop) and never
say that the database was down, nor that it was back."""

import logging
import re

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aoer.bootstrap import watch as watch_module
from aoer.bootstrap.watch import quiet_while_down
from aoer.db.pool import Pool
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
