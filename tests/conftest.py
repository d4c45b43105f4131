"""Shared fixtures: a real PostgreSQL, a migrated template database, one database per test.

The server is `AOER_TEST_DATABASE_URL`, else the local one on 127.0.0.1:5432, else an
embedded server. Under `CI=true` a missing server fails the run instead of falling back.
The tests of `tests/api` connect to their databases as the production login role (`aoer
migrate --app-role`; README "Production roles"), as the API does in production: not superuser,
not owner, Row Level Security applies. The others connect as the owner, or as that role too
under `AOER_TEST_APP_ROLE=1`. Databases are always created, migrated and dropped as the owner.
"""

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import psycopg
import pytest

from aoer.bootstrap import Services, queue_policy
from aoer.config import Settings
from aoer.db.pool import Connection, Pool, connect, open_pool
from aoer.db.roles import AppRole, setup_app_role
from aoer.db.schema import migrate
from aoer.store import QueuePolicy, Session, Store

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
AS_APP_ROLE = os.environ.get("AOER_TEST_APP_ROLE", "").lower() in ("1", "true", "yes")
TEST_APP_ROLE = "aoer_test_app"  # cluster-global like aoer_tenant; left in place, as it is
TEMPLATE_LOCK_KEY = 0x414F4552_7465  # "AOERte": one template migrates at a time per server
REPO = Path(__file__).resolve().parent.parent
API_TESTS = REPO / "tests" / "api"
# The contract's worked cases live beside the repository (../shared/golden); a copy is kept in
# tests/golden so a clone elsewhere (CI) still has them, and a test keeps the two identical.
SHARED_GOLDEN = REPO.parent / "shared" / "golden" / "aoer_cases.json"
VENDORED_GOLDEN = REPO / "tests" / "golden" / "aoer_cases.json"
GOLDEN = SHARED_GOLDEN if SHARED_GOLDEN.exists() else VENDORED_GOLDEN


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def with_user(url: str, user: str) -> str:
    """The same server and database, as another role (no password: the suite's servers trust
    local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def runs_as_app_role(request: pytest.FixtureRequest) -> bool:
    """Whether this test (or module) connects as the app role: every test of `tests/api`, and
    every test under AOER_TEST_APP_ROLE=1."""
    return AS_APP_ROLE or request.path.is_relative_to(API_TESTS)


def as_test_role(request: pytest.FixtureRequest, url: str) -> str:
    """How this test connects to a migrated database: as the app role or as the owner."""
    return with_user(url, TEST_APP_ROLE) if runs_as_app_role(request) else url


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    explicit = os.environ.get("AOER_TEST_DATABASE_URL")
    if explicit:
        if not _reachable(explicit):
            pytest.fail(f"AOER_TEST_DATABASE_URL={explicit} is not reachable")
        return explicit
    if _reachable(LOCAL_SERVER):
        return LOCAL_SERVER
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true and {LOCAL_SERVER} is not reachable")
    from aoer.db.embedded import start_embedded

    return asyncio.run(start_embedded(tmp_path_factory.mktemp("embedded")))


def _admin(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    """One migrated database per test session; each test copies it."""
    name = f"aoer_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _admin(server_url, f"CREATE DATABASE {name}")
    # Roles are cluster-global: parallel test processes (pytest-xdist) migrating their
    # templates at once would race to create aoer_app, aoer_tenant and the test's login role.
    with psycopg.connect(server_url, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (TEMPLATE_LOCK_KEY,))
        asyncio.run(migrate(with_database(server_url, name)))
        asyncio.run(setup_app_role(with_database(server_url, name), AppRole(TEST_APP_ROLE)))
    yield name
    _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url(request: pytest.FixtureRequest, server_url: str, template_db: str) -> Iterator[str]:
    """A fresh migrated database for this test, dropped afterwards."""
    name = f"aoer_t_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f"CREATE DATABASE {name} TEMPLATE {template_db}")
    yield as_test_role(request, with_database(server_url, name))
    _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def owner_db_url(db_url: str, server_url: str) -> str:
    """The test's database as its owner, for what only migrations may do (even where the test
    connects as the app role)."""
    owner = urlsplit(server_url).username or "postgres"
    return with_user(db_url, owner)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    async with open_pool(db_url, max_size=8) as p:
        yield p


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[Connection]:
    c = await connect(db_url)
    yield c
    await c.close()


def session_of(conn: Connection, **policy: Any) -> Session:
    """The store's statements on this connection (policy values as keyword arguments)."""
    return Session(conn, QueuePolicy(**policy))


@pytest.fixture
def store(pool: Pool, db_url: str) -> Store:
    """The store over the test's pool, with the default policy."""
    return Store(pool, db_url)


def services_for(settings: Settings, pool: Pool, db_url: str) -> Services:
    """What the composition root would build for `settings`, over the test's pool."""
    return Services(settings, db_url, Store(pool, db_url, queue_policy(settings)))


MakeTenant = Callable[..., Awaitable[UUID]]


@pytest.fixture
def make_tenant(conn: Connection) -> MakeTenant:
    """Insert a tenant; returns its id."""

    numbers = itertools.count(1)

    async def make(
        name: str | None = None, *, active: bool = True, tenant_id: UUID | None = None
    ) -> UUID:
        # Names are unique (migration 0016): unnamed test tenants are numbered.
        cur = await conn.execute(
            "INSERT INTO tenants (id, name, active)"
            " VALUES (coalesce(%s, gen_random_uuid()), %s, %s) RETURNING id",
            (tenant_id, name or f"Test Motors {next(numbers)}", active),
        )
        row = await cur.fetchone()
        assert row is not None
        return row["id"]  # type: ignore[return-value]

    return make


AddSignals = Callable[[UUID, list[dict[str, Any]]], Awaitable[None]]


@pytest.fixture
def add_signals(conn: Connection) -> AddSignals:
    """Insert signal rows given as {"days_ago": n, "aeo": "60.00", ...} relative to today (UTC)."""

    async def add(tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
        columns = ("seo", "aeo", "geo", "ugc", "geolocal", "observed_aiv", "observed_rar")
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal,"
                " observed_aiv, observed_rar) VALUES (%s, current_date - %s::integer,"
                " %s, %s, %s, %s, %s, %s, %s)",
                [(tenant_id, row["days_ago"], *(row.get(c) for c in columns)) for row in rows],
            )

    return add


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], what: str, timeout_s: float = 10.0
) -> None:
    """Wait until `check()` holds (polled every 20 ms); fail naming `what` after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting until {what}")
        await asyncio.sleep(0.02)


async def lock_waits(conn: Connection, count: int) -> None:
    """Until `count` backends of this database wait on a lock (a row's or a table's)."""

    async def waiting() -> bool:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cur.fetchone()
        return row is not None and row["n"] >= count

    await eventually(waiting, f"{count} statement(s) wait on a lock", timeout_s=5.0)


def utc_today() -> date:
    """Today as the database sees it (sessions run in UTC), not the machine's local date."""
    return datetime.now(UTC).date()


def days_ago(n: int) -> date:
    return utc_today() - timedelta(days=n)


async def promote_a_model_three_days_ago(conn: Connection) -> None:
    """An audited promotion of v2 three days ago (the champion row itself is left alone:
    scores stay v1) — what the trend marks as a model change."""
    await conn.execute(
        "INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal)"
        " VALUES ('v2', 'retired', 0.1, 0.4, 0.25, 0.25, 0)"
    )
    await conn.execute(
        "INSERT INTO model_audit (kind, trigger, champion_version, challenger_version,"
        " result_version, decision, reason, duration_ms, created_at)"
        " VALUES ('train', 'test', 'v1', 'v2', 'v2', 'promoted', 'clearly better', 1,"
        " now() - interval '3 days')"
    )
