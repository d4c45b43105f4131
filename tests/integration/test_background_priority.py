"""Worker sessions at a lower CPU priority: the `prioritize` extension (migration 0022), their
sessions' autogroups (migration 0027) and `SessionLimits.backend_nice` (src/aoer/db/pool.py)."""

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import psycopg
import pytest

from aoer.db.pool import (
    Connection,
    SessionLimits,
    connect,
    lower_priority,
    lower_session_autogroup,
    open_pool,
)
from tests.conftest import IN_CI, TEST_APP_ROLE, with_user


def has_extension(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'prioritize'").fetchone()
    return row is not None


def require_prioritize(url: str) -> None:
    """The database must have the extension, which migration 0022 creates where the server
    has the package (postgresql-15-prioritize, installed by .ci/run): without it the test
    fails under CI=true and skips elsewhere."""
    if not has_extension(url):
        if IN_CI:
            pytest.fail("migration 0022 did not create the prioritize extension under CI=true")
        pytest.skip("this server has no prioritize extension (postgresql-15-prioritize)")


@pytest.fixture
def prioritize(db_url: str) -> str:
    """The test's database, with the extension (`require_prioritize`)."""
    require_prioritize(db_url)
    return db_url


async def priority_of(conn: Connection, pid: int) -> int:
    cur = await conn.execute("SELECT get_backend_priority(%s) AS nice", (pid,))
    row = await cur.fetchone()
    assert row is not None
    return int(str(row["nice"]))


async def backend_pid(conn: Connection) -> int:
    cur = await conn.execute("SELECT pg_backend_pid() AS pid")
    row = await cur.fetchone()
    assert row is not None
    return int(str(row["pid"]))


@pytest.fixture
async def observer(owner_db_url: str) -> AsyncIterator[Connection]:
    conn = await connect(owner_db_url)
    yield conn
    await conn.close()


async def test_a_worker_pool_runs_its_sessions_at_the_asked_niceness(
    prioritize: str, observer: Connection
) -> None:
    limits = SessionLimits(application_name="aoer worker", backend_nice=7)
    async with open_pool(prioritize, max_size=3, min_size=3, limits=limits) as pool:
        pids = []
        async with pool.connection() as a, pool.connection() as b, pool.connection() as c:
            for conn in (a, b, c):
                pids.append(await backend_pid(conn))
        for pid in pids:
            assert await priority_of(observer, pid) == 7
        cur = await observer.execute(
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE application_name = 'aoer worker' AND pid = ANY (%s)",
            (pids,),
        )
        assert await cur.fetchone() == {"n": 3}
    # Sessions without the setting keep the server's normal priority.
    cur = await observer.execute("SELECT get_backend_priority(pg_backend_pid()) AS nice")
    assert await cur.fetchone() == {"nice": 0}


async def test_a_role_that_is_not_superuser_lowers_its_own_backend_and_never_raises_it(
    prioritize: str, db_url: str, observer: Connection
) -> None:
    # The app role is what workers connect as in production (README "Production roles").
    conn = await connect(with_user(db_url, TEST_APP_ROLE))
    try:
        cur = await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await cur.fetchone() == {"rolsuper": False}
        assert await lower_priority(conn, 5) == 5
        assert await lower_priority(conn, 3) == 5  # not raised back, and no error
        assert await lower_priority(conn, 9) == 9
        assert await priority_of(observer, await backend_pid(conn)) == 9
        # The connection is left usable, outside any transaction.
        cur = await conn.execute("SELECT 1 AS one")
        assert await cur.fetchone() == {"one": 1}
    finally:
        await conn.close()


async def test_without_the_extension_sessions_keep_their_priority(
    prioritize: str, owner_db_url: str, observer: Connection
) -> None:
    await observer.execute("DROP EXTENSION prioritize")
    limits = SessionLimits(application_name="aoer worker", backend_nice=7)
    async with (
        open_pool(owner_db_url, max_size=1, limits=limits) as pool,
        pool.connection() as conn,
    ):
        assert await lower_priority(conn, 7) is None
        pid = await backend_pid(conn)
        # Back, to look at the pool's session (its pool opened without it).
        await observer.execute("CREATE EXTENSION prioritize")
        assert await priority_of(observer, pid) == 0


async def test_a_session_name_given_in_the_url_wins_over_the_pools_own(
    db_url: str, observer: Connection
) -> None:
    # Operators and harnesses (bench/chaos_fleet.py: PGAPPNAME) tell processes apart by it.
    limits = SessionLimits(application_name="aoer worker")
    named = f"{db_url}{'&' if '?' in db_url else '?'}application_name=mine"
    for url, expected in ((db_url, "aoer worker"), (named, "mine")):
        async with open_pool(url, max_size=1, limits=limits) as pool, pool.connection() as conn:
            cur = await conn.execute("SELECT current_setting('application_name') AS name")
            assert await cur.fetchone() == {"name": expected}


# -- autogroups (migration 0027) -----------------------------------------------------------


def require_autogroups() -> None:
    """The kernel must have autogroups (CONFIG_SCHED_AUTOGROUP, in Debian's and Ubuntu's
    kernels, and on the machines CI runs on): they are what migration 0027 is for. Without
    them the test fails under CI=true and skips elsewhere."""
    if not Path("/proc/self/autogroup").exists():
        if IN_CI:
            pytest.fail("this kernel has no autogroups (/proc/self/autogroup) under CI=true")
        pytest.skip("this kernel has no autogroups (/proc/self/autogroup)")


def autogroup(pid: int | str = "self") -> str:
    """A process's autogroup as /proc shows it ("/autogroup-85 nice 0"), read off /proc (the
    tests' server is local). Empty for the kernel's root group: a process whose session no
    one started with setsid() since boot (init's, and a CI runner's children may be in it)."""
    return Path(f"/proc/{pid}/autogroup").read_text().strip()


def autogroup_nice(pid: int | str) -> int:
    """The niceness of the autogroup of a process that leads its session (a server backend,
    a worker started with setsid): such a process has its own group."""
    found = re.search(r"nice (-?\d+)", autogroup(pid))
    assert found is not None, f"process {pid} has no autogroup of its own"
    return int(found[1])


async def test_a_worker_pool_lowers_the_autogroup_of_every_session_it_opens(
    db_url: str, observer: Connection
) -> None:
    require_autogroups()
    ours = autogroup()
    limits = SessionLimits(application_name="aoer worker", backend_nice=7)
    # Six sessions opened together: the kernel takes one autogroup change every 100 ms from
    # the server's (unprivileged) processes, so all but the first wait for their turn.
    async with open_pool(db_url, max_size=6, min_size=6, limits=limits) as pool:
        async with AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(pool.connection()) for _ in range(6)]
            pids = [await backend_pid(conn) for conn in conns]
        assert len(set(pids)) == 6
        assert [autogroup_nice(pid) for pid in pids] == [7] * 6
    # Each backend leads its own session: nobody else's autogroup moved.
    assert autogroup_nice(await backend_pid(observer)) == 0
    assert autogroup() == ours


async def test_a_role_that_is_not_superuser_lowers_its_own_sessions_autogroup_and_never_raises_it(
    db_url: str,
) -> None:
    require_autogroups()
    conn = await connect(with_user(db_url, TEST_APP_ROLE))
    try:
        cur = await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await cur.fetchone() == {"rolsuper": False}
        pid = await backend_pid(conn)
        assert autogroup_nice(pid) == 0
        assert await lower_session_autogroup(conn, 5) == 5
        assert autogroup_nice(pid) == 5
        assert await lower_session_autogroup(conn, 3) == 5  # not raised back, and no error
        assert autogroup_nice(pid) == 5
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be 0-19, got 20"):
            await conn.execute("SELECT aoer_lower_session_autogroup(20)")
        await conn.rollback()
        cur = await conn.execute("SELECT 1 AS one")  # left usable
        assert await cur.fetchone() == {"one": 1}
    finally:
        await conn.close()


async def test_without_the_autogroup_function_sessions_keep_their_autogroup(
    owner_db_url: str, observer: Connection
) -> None:
    require_autogroups()
    # What a database migrated by a role that is not a superuser has (0027 creates nothing).
    await observer.execute("DROP FUNCTION aoer_lower_session_autogroup(integer, integer)")
    limits = SessionLimits(application_name="aoer worker", backend_nice=7)
    async with (
        open_pool(owner_db_url, max_size=1, limits=limits) as pool,
        pool.connection() as conn,
    ):
        assert await lower_session_autogroup(conn, 7) is None
        assert autogroup_nice(await backend_pid(conn)) == 0
