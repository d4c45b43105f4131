"""Migrations build the contract's schema, apply once, and survive two processes at once."""

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from aoer.db.schema import available_migrations, migrate
from tests.conftest import _admin, with_database

CONTRACT_COLUMNS = {
    "answer_observations": {
        "id",
        "dealer_id",
        "date",
        "engine",
        "prompt",
        "mentioned",
        "position",
        "cited",
        "cited_urls",
        "competitors",
        "sentiment",
        "created_at",
    },
    "tenants": {"id", "name", "domain", "city", "region", "active", "created_at", "updated_at"},
    "aiv_raw_signals": {
        "dealer_id",
        "date",
        "seo",
        "aeo",
        "geo",
        "ugc",
        "geolocal",
        "observed_aiv",
        "observed_rar",
        "created_at",
        "updated_at",
    },
    "aoer_summary": {
        "id",
        "tenant_id",
        "aoer_score",
        "visibility_risk",
        "last_updated",
        "metrics",
        "created_at",
        "updated_at",
    },
    "metrics_events": {"id", "tenant_id", "event_type", "event_data", "created_at"},
    "aoer_queue": {
        "id",
        "tenant_id",
        "priority",
        "status",
        "retry_count",
        "max_retries",
        "scheduled_at",
        "started_at",
        "completed_at",
        "error_message",
        "created_at",
        "updated_at",
        "locked_by",
        "lease_expires_at",
        "priority_rank",
    },
    "aoer_failures": {"tenant_id", "error_message", "error_data", "retry_count", "created_at"},
}


@pytest.fixture
def empty_db(server_url: str) -> Iterator[str]:
    name = f"aoer_m_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f"CREATE DATABASE {name}")
    yield with_database(server_url, name)
    _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_migrate_applies_everything_once(empty_db: str) -> None:
    first = await migrate(empty_db)
    assert [m.version for m in first] == [m.version for m in available_migrations()]
    assert await migrate(empty_db) == []


async def test_two_processes_migrating_at_once_apply_each_migration_once(empty_db: str) -> None:
    results = await asyncio.gather(migrate(empty_db), migrate(empty_db))
    applied = sorted(m.version for result in results for m in result)
    assert applied == [m.version for m in available_migrations()]
    with psycopg.connect(empty_db) as conn:
        rows = conn.execute("SELECT version FROM aoer_schema_migrations ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == applied


def test_migrations_build_the_contract_tables_and_views(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        for table, columns in CONTRACT_COLUMNS.items():
            found = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                    (table,),
                )
            }
            assert columns <= found, f"{table} lacks {columns - found}"
        views = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.views")}
        assert {"v_aoer_dashboard", "v_aoer_queue_status"} <= views


def test_signal_values_outside_their_range_are_refused(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        tenant = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()
        assert tenant is not None
        for column, value in [("aeo", 100.01), ("geo", -1), ("observed_rar", -0.01)]:
            with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
                conn.execute(
                    f"INSERT INTO aiv_raw_signals (dealer_id, date, {column})"  # type: ignore[arg-type]
                    " VALUES (%s, current_date, %s)",
                    (tenant[0], value),
                )


def test_one_waiting_job_per_tenant_is_enforced_by_the_schema(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        tenant = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()
        assert tenant is not None
        conn.execute("INSERT INTO aoer_queue (tenant_id) VALUES (%s)", (tenant[0],))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO aoer_queue (tenant_id) VALUES (%s)", (tenant[0],))


def test_0016_keeps_the_oldest_of_duplicate_names_and_tags_the_others(db_url: str) -> None:
    """A database that registered a name twice before names were unique still migrates."""
    (migration,) = [m for m in available_migrations() if m.version == 16]
    with psycopg.connect(db_url) as conn:
        conn.execute("DROP INDEX tenants_name_key")  # as before 0016
        rows = [
            ("Summit Ford", "2024-01-01"),
            (" summit ford", "2024-02-01"),
            ("Other", "2024-03-01"),
        ]
        ids = [
            conn.execute(
                "INSERT INTO tenants (name, created_at) VALUES (%s, %s::date) RETURNING id",
                row,
            ).fetchone()[0]  # type: ignore[index]
            for row in rows
        ]
        conn.execute(migration.sql)
        names = dict(conn.execute("SELECT id, name FROM tenants").fetchall())
        assert names == {
            ids[0]: "Summit Ford",
            ids[1]: f" summit ford ({str(ids[1])[:8]})",
            ids[2]: "Other",
        }
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO tenants (name) VALUES ('OTHER')")
