"""Monthly partitions of `aiv_raw_signals` and `metrics_events` (0014_partitions.sql): the
retention tick creates months ahead and drops whole months past the events' age; reads of the
score window and of a tenant's history touch only the months they ask for; a partition is
reachable through its parent only."""

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from aoer.constants import RECOMPUTE_EVENT
from aoer.db.pool import Connection, connect
from aoer.db.queries import query
from aoer.worker.scheduler import fire_if_due
from tests.conftest import MakeTenant, session_of, utc_today
from tests.integration.test_query_plans import nodes_in
from tests.integration.test_retention import retention_tick  # events kept 90 days


def month_of(day: date) -> str:
    return day.strftime("%Y_%m")


def months_from(day: date, count: int) -> list[date]:
    first = day.replace(day=1)
    found = []
    for _ in range(count):
        found.append(first)
        first = (first + timedelta(days=32)).replace(day=1)
    return found


async def create_month(conn: Connection, table: str, day: date) -> None:
    await conn.execute("SELECT aoer_create_month_partition(%s::regclass, %s)", (table, day))


async def partitions(conn: Connection, table: str) -> set[str]:
    return set(await session_of(conn).partitions.names(table))


async def add_events(conn: Connection, tenant: UUID, days_ago: int, n: int = 1) -> None:
    await conn.execute(
        "INSERT INTO metrics_events (tenant_id, event_type, created_at)"
        " SELECT %s, 'aoer_recompute', now() - make_interval(days => %s)"
        " FROM generate_series(1, %s)",
        (tenant, days_ago, n),
    )


async def count(conn: Connection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # type: ignore[arg-type]
    row = await cur.fetchone()
    return int(row["n"]) if row else -1


async def test_retention_drops_whole_old_months_and_keeps_recent_ones(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    now = datetime.now(UTC).date()
    old = [now - timedelta(days=200), now - timedelta(days=150)]  # months ended > 90 days ago
    recent = now - timedelta(days=40)  # its month ends after the 90-day cutoff
    for day in [*old, recent]:
        await create_month(conn, "metrics_events", day)
        await create_month(conn, "aiv_raw_signals", day)
    for days in (200, 150):
        await add_events(conn, tenant, days, n=3)
    await add_events(conn, tenant, 40, n=2)
    await add_events(conn, tenant, 0, n=1)
    await conn.execute(
        "INSERT INTO aiv_raw_signals (dealer_id, date, aeo) VALUES (%s, %s, 50)", (tenant, old[0])
    )

    result = await fire_if_due(session_of(conn), retention_tick(), "w1")

    assert result is not None
    assert result["partitions"]["dropped"] == {"metrics_events": 2}
    assert result["partitions"]["defaultRowsDeleted"] == {"metrics_events": 0}
    names = await partitions(conn, "metrics_events")
    assert {f"metrics_events_p{month_of(d)}" for d in old}.isdisjoint(names)
    assert f"metrics_events_p{month_of(recent)}" in names
    assert await count(conn, "metrics_events") == 3  # 40 days and today
    # Signals have no retention age: their old months stay.
    assert f"aiv_raw_signals_p{month_of(old[0])}" in await partitions(conn, "aiv_raw_signals")
    assert await count(conn, "aiv_raw_signals") == 1


async def test_retention_creates_this_month_and_three_ahead(conn: Connection) -> None:
    ahead = months_from(datetime.now(UTC).date(), 4)
    last = f"metrics_events_p{month_of(ahead[-1])}"
    await conn.execute(f"DROP TABLE {last}")  # type: ignore[arg-type]

    result = await fire_if_due(session_of(conn), retention_tick(), "w1")

    assert result is not None
    assert result["partitions"]["created"] == {"aiv_raw_signals": 0, "metrics_events": 1}
    for table in ("metrics_events", "aiv_raw_signals"):
        names = await partitions(conn, table)
        assert {f"{table}_p{month_of(m)}" for m in ahead} <= names
        assert f"{table}_default" in names


async def insert_vacuum_factors(conn: Connection, table: str) -> dict[str, str | None]:
    """Each partition's own autovacuum_vacuum_insert_scale_factor (None: the server's)."""
    cur = await conn.execute(
        """
        SELECT c.relname::text AS name,
               (SELECT split_part(o, '=', 2) FROM unnest(c.reloptions) o
                WHERE o LIKE 'autovacuum_vacuum_insert_scale_factor=%%') AS factor
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass
        """,
        (table,),
    )
    return {row["name"]: row["factor"] for row in await cur.fetchall()}


async def test_signal_partitions_are_vacuumed_as_days_arrive(conn: Connection) -> None:
    """Migration 0021: every signals partition asks autovacuum to run once 1 % of it is new
    (a day's arrivals), so the score's index-only window stays off the heap; a month the
    retention tick creates ahead gets the same, an operator's own value is kept, and the
    events' partitions keep the server's default."""
    assert set((await insert_vacuum_factors(conn, "aiv_raw_signals")).values()) == {"0.01"}
    assert set((await insert_vacuum_factors(conn, "metrics_events")).values()) == {None}

    ahead = months_from(datetime.now(UTC).date(), 4)
    await conn.execute(f"DROP TABLE aiv_raw_signals_p{month_of(ahead[-1])}")  # type: ignore[arg-type]
    chosen = f"aiv_raw_signals_p{month_of(ahead[0])}"
    await conn.execute(
        f"ALTER TABLE {chosen} SET (autovacuum_vacuum_insert_scale_factor = 0.05)"  # type: ignore[arg-type]
    )

    result = await fire_if_due(session_of(conn), retention_tick(), "w1")

    assert result is not None
    assert result["partitions"]["created"]["aiv_raw_signals"] == 1
    factors = await insert_vacuum_factors(conn, "aiv_raw_signals")
    assert factors[f"aiv_raw_signals_p{month_of(ahead[-1])}"] == "0.01"
    assert factors[chosen] == "0.05"
    assert set((await insert_vacuum_factors(conn, "metrics_events")).values()) == {None}


async def test_a_row_without_its_month_lands_in_the_default_and_moves_when_the_month_comes(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    far = datetime.now(UTC).date() + timedelta(days=400)  # beyond the months made ahead
    await conn.execute(
        "INSERT INTO aiv_raw_signals (dealer_id, date, aeo) VALUES (%s, %s, 50)", (tenant, far)
    )
    assert await count(conn, "aiv_raw_signals_default") == 1
    await create_month(conn, "aiv_raw_signals", far)
    assert await count(conn, "aiv_raw_signals_default") == 0
    assert await count(conn, f"aiv_raw_signals_p{month_of(far)}") == 1
    assert await count(conn, "aiv_raw_signals") == 1


async def test_the_tenant_role_cannot_read_a_partition_directly(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    await add_events(conn, tenant, 0)
    part = f"metrics_events_p{month_of(datetime.now(UTC).date())}"
    for role in ("aoer_tenant", "aoer_app"):
        async with conn.transaction(force_rollback=True):
            await conn.execute(f"SET LOCAL ROLE {role}")  # type: ignore[arg-type]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(f"SELECT * FROM {part}")  # type: ignore[arg-type]


# -- Partition pruning ----------------------------------------------------------------------


@pytest.fixture
async def owner(owner_db_url: str) -> Any:
    """The test's database as its owner, with two years of monthly partitions (only the
    superuser may LOAD auto_explain)."""
    c = await connect(owner_db_url)
    today = utc_today()
    for table in ("aiv_raw_signals", "metrics_events"):
        for month in months_from(today - timedelta(days=730), 25):
            await create_month(c, table, month)
    yield c
    await c.close()


def scanned(plan: object, table: str) -> set[str]:
    return {
        str(n["Relation Name"])
        for n in nodes_in(plan)
        if str(n.get("Relation Name", "")).startswith(table)
    }


async def nested_plans(
    owner: Connection, sql: str, params: tuple[Any, ...], *, analyze: bool = False
) -> list[Any]:
    """The JSON plans auto_explain logs for `sql` and every statement nested in it (the
    statements inside SQL functions, which EXPLAIN does not show)."""
    plans: list[Any] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        text = diag.message_primary or ""
        if "{" in text:
            plans.append(json.loads(text[text.index("{") :]))

    owner.add_notice_handler(keep)
    await owner.execute("LOAD 'auto_explain'")
    for setting, value in {
        "auto_explain.log_min_duration": "0",
        "auto_explain.log_nested_statements": "on",
        "auto_explain.log_format": "json",
        "auto_explain.log_level": "notice",
        "auto_explain.log_analyze": "on" if analyze else "off",
    }.items():
        await owner.execute("SELECT set_config(%s, %s, false)", (setting, value))
    await owner.execute(sql, params)  # type: ignore[arg-type]
    owner.remove_notice_handler(keep)
    return plans


async def test_the_score_function_reads_only_the_months_of_its_window(
    owner: Connection, make_tenant: MakeTenant
) -> None:
    """The real statement inside aoer_compute_scores_as_of, as auto_explain logs it."""
    tenant = await make_tenant()
    as_of = utc_today() - timedelta(days=100)
    plans = await nested_plans(
        owner, "SELECT * FROM aoer_compute_scores_as_of(%s::uuid[], %s)", ([tenant], as_of)
    )
    tables = set().union(*(scanned(p, "aiv_raw_signals") for p in plans))
    window = {f"aiv_raw_signals_p{month_of(as_of - timedelta(days=30))}",
              f"aiv_raw_signals_p{month_of(as_of)}"}  # fmt: skip
    assert tables, f"no plan of the nested statement was logged: {plans}"
    assert tables <= window, tables


async def test_the_score_reads_its_window_from_the_primary_key_alone(owner: Connection) -> None:
    """Migration 0017: the component columns ride in the primary key, so once the signals are
    vacuumed a recompute reads no heap page of aiv_raw_signals (one tenant's days lie on as
    many heap pages; in the key they are adjacent). Checked on the statement a worker's batch
    runs, with the score it returns."""
    await owner.execute(
        "INSERT INTO tenants (name) SELECT 'Window Motors ' || g FROM generate_series(1, 2000) g"
    )
    # Day by day, as signals arrive: each day's rows of every tenant together in the heap.
    await owner.execute(
        """
        INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal)
        SELECT t.id, current_date - d, 50, 40 + d % 7, 30, 20, 10
        FROM generate_series(0, 59) d CROSS JOIN tenants t
        ORDER BY d, t.id
        """
    )
    await owner.execute("VACUUM (ANALYZE) aiv_raw_signals")
    cur = await owner.execute("SELECT array_agg(id) AS ids FROM (SELECT id FROM tenants LIMIT 5) t")
    row = await cur.fetchone()
    assert row is not None
    plans = await nested_plans(
        owner, "SELECT * FROM aoer_store_scores(%s::uuid[])", (row["ids"],), analyze=True
    )
    reads = [
        n
        for plan in plans
        for n in nodes_in(plan)
        if str(n.get("Relation Name", "")).startswith("aiv_raw_signals")
    ]
    shown = json.dumps(reads, indent=1, default=str)[:3000]
    assert reads, f"no read of the signals was logged: {plans}"
    assert {n["Node Type"] for n in reads} == {"Index Only Scan"}, shown
    assert sum(int(n["Heap Fetches"]) for n in reads) == 0, shown
    assert sum(int(n["Actual Rows"]) for n in reads) == 5 * 31, "the 31 days of the window"
    scores = await owner.execute(
        "SELECT count(*) AS n FROM aoer_summary WHERE tenant_id = ANY (%s)"
        " AND (metrics ->> 'dataPoints')::integer = 31",
        (row["ids"],),
    )
    assert (await scores.fetchone() or {}).get("n") == 5


async def test_the_history_read_scans_only_the_months_it_asks_for(
    owner: Connection, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    params = {"tenant_id": tenant, "event_type": RECOMPUTE_EVENT, "days": 30, "limit": 100}
    cur = await owner.execute(b"EXPLAIN (FORMAT JSON) " + query("score_history").encode(), params)
    row = await cur.fetchone()
    assert row is not None
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    tables = scanned(plan, "metrics_events")
    today = utc_today()
    window = {f"metrics_events_p{month_of(today - timedelta(days=30))}",
              f"metrics_events_p{month_of(today)}"}  # fmt: skip
    assert tables
    assert tables <= window, (tables, json.dumps(plan, indent=1, default=str)[:3000])
