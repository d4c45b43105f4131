"""Row Level Security at the database level: a tenant-scoped session sees and writes only its
own rows in every tenant-owned table, even through queries without `WHERE tenant_id`."""

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from aoer.api.auth import Principal
from aoer.db.pool import Connection, Pool, open_pool
from aoer.errors import DatabaseError
from aoer.store import Session, Store
from tests.api.conftest import recompute_through_worker
from tests.conftest import AddSignals, MakeTenant

SIGNAL = {"days_ago": 1, "aeo": "50", "geo": "40", "ugc": "30"}


def tenant(tenant_id: UUID) -> Principal:
    return Principal(f"tenant:{tenant_id}", "tenant", tenant_id, datetime.now(UTC) + timedelta(1))


def org(org_id: UUID) -> Principal:
    expires = datetime.now(UTC) + timedelta(1)
    return Principal(f"org:{org_id}", "org", None, expires, org_id=org_id)


def scoped(pool: Pool, tenant_id: UUID) -> AbstractAsyncContextManager[Session]:
    """A store session as the tenant's token would get it (Row Level Security on)."""
    return Store(pool, str(pool.conninfo)).session(tenant(tenant_id).scope)


def org_scoped(pool: Pool, org_id: UUID) -> AbstractAsyncContextManager[Session]:
    """A store session as an organisation's token would get it."""
    return Store(pool, str(pool.conninfo)).session(org(org_id).scope)


async def owned_tables(conn: Connection) -> dict[str, str]:
    """Every table carrying a tenant (by column name), with that column; plus `tenants`.
    Partitions are left out: they are reached through their parent only (no grant to the
    application's roles; tests/integration/test_partitions.py)."""
    cur = await conn.execute(
        """SELECT c.table_name, c.column_name
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
           JOIN pg_class r ON r.relname = c.table_name
                           AND r.relnamespace = c.table_schema::regnamespace
           WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
             AND NOT r.relispartition
             AND c.column_name IN ('tenant_id', 'dealer_id')"""
    )
    found = {str(r["table_name"]): str(r["column_name"]) for r in await cur.fetchall()}
    found["tenants"] = "id"
    return found


@pytest.fixture
async def two_tenants(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> tuple[UUID, UUID]:
    """Two tenants with rows in every tenant-owned table, each in an organisation of its own
    (named after it: `A Motors Group` holds A Motors)."""
    a, b = await make_tenant("A Motors"), await make_tenant("B Motors")
    for t in (a, b):
        await add_signals(t, [SIGNAL])
    await recompute_through_worker(conn, [a, b])  # summaries, events, completed jobs
    for t in (a, b):
        await conn.execute("INSERT INTO aoer_queue (tenant_id) VALUES (%s)", (t,))
        await conn.execute(
            "INSERT INTO aoer_failures (tenant_id, error_message) VALUES (%s, 'boom')", (t,)
        )
        await conn.execute(
            "INSERT INTO aoer_sessions (id, kind, subject, role, tenant_id, expires_at)"
            " VALUES (gen_random_uuid()::text, 'session', 'x', 'tenant', %s, now() + '1h')",
            (t,),
        )
        await conn.execute(
            "WITH o AS (INSERT INTO organizations (name)"
            " SELECT name || ' Group' FROM tenants WHERE id = %(t)s RETURNING id)"
            " UPDATE tenants SET org_id = (SELECT id FROM o) WHERE id = %(t)s",
            {"t": t},
        )
        await conn.execute(
            "INSERT INTO audit_log (actor, role, org_id, tenant_id, action)"
            " SELECT 'x', 'admin', org_id, id, 'x' FROM tenants WHERE id = %s",
            (t,),
        )
        await conn.execute(
            "INSERT INTO api_keys (prefix, hash, scope, tenant_id, created_by)"
            " VALUES ('aoer_x', encode(sha256(%s::text::bytea), 'hex'), 'tenant', %s, 'x')",
            (t, t),
        )
        await conn.execute(
            "INSERT INTO api_keys (prefix, hash, scope, org_id, created_by)"
            " SELECT 'aoer_y', encode(sha256(('org' || id)::bytea), 'hex'), 'org', org_id, 'x'"
            " FROM tenants WHERE id = %s",
            (t,),
        )
        await conn.execute(
            "INSERT INTO answer_observations (dealer_id, date, engine, prompt, mentioned, cited)"
            " VALUES (%s, current_date, 'chatgpt', 'best dealer', true, false)",
            (t,),
        )
        await conn.execute(
            "INSERT INTO answer_observation_days VALUES (%s, current_date, 'chatgpt',"
            " 1, 1, 0, 0, 0, 0, 0, 0)",
            (t,),
        )
        await conn.execute(
            "INSERT INTO answer_competitor_days VALUES (%s, current_date, 'Rival', 1)", (t,)
        )
        await conn.execute(
            "INSERT INTO answer_cited_url_days VALUES (%s, current_date, 'https://x.example', 1)",
            (t,),
        )
        await conn.execute(
            "WITH r AS (INSERT INTO alert_rules (scope, tenant_id, kind, emails, created_by)"
            "           VALUES ('tenant', %(t)s, 'job_failed', '{a@example.com}', 'x')"
            "           RETURNING id),"
            " a AS (INSERT INTO alerts (rule_id, tenant_id, kind, dedup_key, data)"
            "       SELECT id, %(t)s, 'job_failed', id::text, '{}' FROM r RETURNING id)"
            " INSERT INTO alert_deliveries (alert_id, tenant_id, email)"
            " SELECT id, %(t)s, 'a@example.com' FROM a",
            {"t": t},
        )
    return a, b


async def org_of(conn: Connection, tenant_id: UUID) -> UUID:
    cur = await conn.execute("SELECT org_id FROM tenants WHERE id = %s", (tenant_id,))
    row = await cur.fetchone()
    assert row is not None
    return UUID(str(row["org_id"]))


async def test_every_tenant_owned_table_has_rls_and_a_policy(conn: Connection) -> None:
    tables = await owned_tables(conn)
    assert {"tenants", "aiv_raw_signals", "aoer_summary", "metrics_events", "aoer_queue",
            "aoer_failures", "aoer_sessions"} <= set(tables)  # fmt: skip
    cur = await conn.execute(
        """SELECT c.relname, c.relrowsecurity, count(p.policyname) AS policies
           FROM pg_class c LEFT JOIN pg_policies p
             ON p.tablename = c.relname AND p.schemaname = 'public'
           WHERE c.relname = ANY (%s) AND c.relkind IN ('r', 'p')
           GROUP BY c.relname, c.relrowsecurity""",
        (list(tables),),
    )
    state = {r["relname"]: (r["relrowsecurity"], r["policies"]) for r in await cur.fetchall()}
    unprotected = [t for t in tables if state.get(t, (False, 0))[0] is not True]
    without_policy = [t for t in tables if state.get(t, (False, 0))[1] == 0]
    assert unprotected == []
    assert without_policy == []


async def test_a_tenant_session_sees_only_its_rows_without_any_where(
    pool: Pool, conn: Connection, two_tenants: tuple[UUID, UUID]
) -> None:
    a, b = two_tenants
    tables = await owned_tables(conn)
    for table, column in tables.items():
        cur = await conn.execute(f"SELECT DISTINCT {column} AS t FROM {table}")  # type: ignore[arg-type]
        owners = {r["t"] for r in await cur.fetchall()} - {None}  # organisation-wide keys
        assert owners == {a, b}, f"{table} lacks test rows"
    for me in (a, b):
        async with scoped(pool, me) as session:
            for table, column in tables.items():
                cur = await session.conn.execute(f"SELECT {column} AS t FROM {table}")  # type: ignore[arg-type]
                seen = {r["t"] for r in await cur.fetchall()}
                assert seen == {me}, f"{table}: tenant {me} sees {seen}"
            cur = await session.conn.execute("SELECT tenant_id FROM v_aoer_dashboard")
            assert {r["tenant_id"] for r in await cur.fetchall()} == {me}


async def test_an_org_session_sees_exactly_its_tenants_rows_in_every_table(
    pool: Pool, conn: Connection, two_tenants: tuple[UUID, UUID], make_tenant: MakeTenant
) -> None:
    a, b = two_tenants
    outsider = await make_tenant("Independent Motors")  # in no organisation
    tables = await owned_tables(conn)
    for me in (a, b):
        org_id = await org_of(conn, me)
        async with org_scoped(pool, org_id) as session:
            for table, column in tables.items():
                cur = await session.conn.execute(f"SELECT {column} AS t FROM {table}")  # type: ignore[arg-type]
                seen = {r["t"] for r in await cur.fetchall()} - {None}
                assert seen == {me}, f"{table}: organisation of {me} sees {seen}"
            cur = await session.conn.execute("SELECT tenant_id FROM v_aoer_dashboard")
            assert {r["tenant_id"] for r in await cur.fetchall()} == {me}
            cur = await session.conn.execute("SELECT DISTINCT org_id FROM api_keys")
            assert {r["org_id"] for r in await cur.fetchall()} == {org_id, None}
            cur = await session.conn.execute("SELECT id FROM organizations")
            assert {r["id"] for r in await cur.fetchall()} == {org_id}
            assert outsider not in {r["t"] for r in await (
                await session.conn.execute("SELECT id AS t FROM tenants")).fetchall()}  # fmt: skip


async def test_an_org_session_cannot_write_another_organisations_rows(
    pool: Pool, conn: Connection, two_tenants: tuple[UUID, UUID]
) -> None:
    a, b = two_tenants
    org_a, org_b = await org_of(conn, a), await org_of(conn, b)
    writes = [
        ("INSERT INTO aiv_raw_signals (dealer_id, date, aeo) VALUES (%s, current_date, 1)", (b,)),
        ("INSERT INTO aoer_queue (tenant_id, priority) VALUES (%s, 'urgent')", (b,)),
        ("UPDATE tenants SET org_id = %s", (org_b,)),
        (
            "INSERT INTO api_keys (prefix, hash, scope, org_id, created_by)"
            " VALUES ('aoer_z', repeat('a', 64), 'org', %s, 'x')",
            (org_b,),
        ),
    ]
    for sql, params in writes:
        with pytest.raises(DatabaseError, match=r"row-level security|permission denied"):
            async with org_scoped(pool, org_a) as session:
                await session.conn.execute(sql, params)  # type: ignore[arg-type]
    async with org_scoped(pool, org_a) as session:
        cur = await session.conn.execute("UPDATE api_keys SET revoked_at = now() RETURNING id")
        assert len(await cur.fetchall()) == 2  # its organisation's key and its tenant's
    cur = await conn.execute("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NOT NULL")
    assert (await cur.fetchone()) == {"n": 2}


async def test_without_claims_the_tenant_role_sees_nothing(
    conn: Connection, two_tenants: tuple[UUID, UUID]
) -> None:
    tables = await owned_tables(conn)
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE aoer_tenant")
        for table in tables:
            cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # type: ignore[arg-type]
            row = await cur.fetchone()
            assert row is not None
            assert row["n"] == 0, table


async def test_a_tenant_session_cannot_write_another_tenants_rows(
    pool: Pool, conn: Connection, two_tenants: tuple[UUID, UUID]
) -> None:
    a, b = two_tenants
    writes = [
        ("INSERT INTO aiv_raw_signals (dealer_id, date, aeo) VALUES (%s, current_date, 1)", (b,)),
        ("INSERT INTO aoer_queue (tenant_id, priority) VALUES (%s, 'urgent')", (b,)),
        ("UPDATE aoer_queue SET tenant_id = %s", (b,)),
    ]
    for sql, params in writes:
        with pytest.raises(DatabaseError, match="row-level security"):
            async with scoped(pool, a) as session:
                await session.conn.execute(sql, params)  # type: ignore[arg-type]
    # Blanket statements touch only the caller's rows, and read-only tables refuse writes.
    async with scoped(pool, a) as session:
        cur = await session.conn.execute("UPDATE aiv_raw_signals SET aeo = 99 RETURNING dealer_id")
        assert {r["dealer_id"] for r in await cur.fetchall()} == {a}
    with pytest.raises(DatabaseError, match="permission denied"):
        async with scoped(pool, a) as session:
            await session.conn.execute("DELETE FROM aoer_summary")
    cur = await conn.execute("SELECT aeo FROM aiv_raw_signals WHERE dealer_id = %s", (b,))
    assert [r["aeo"] for r in await cur.fetchall()] == [50]


async def test_the_scope_ends_with_the_transaction(
    db_url: str, two_tenants: tuple[UUID, UUID]
) -> None:
    a, _ = two_tenants
    async with open_pool(db_url, max_size=1) as single:  # the same connection both times
        async with scoped(single, a) as session:
            cur = await session.conn.execute("SELECT current_user AS who")
            assert (await cur.fetchone()) == {"who": "aoer_tenant"}
        async with single.connection() as again:
            cur = await again.execute(
                "SELECT current_user AS who, current_setting('request.jwt.claims', true) AS c"
            )
            row = await cur.fetchone()
    assert row is not None
    assert row["who"] != "aoer_tenant"
    assert not row["c"]
