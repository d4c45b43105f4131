"""`aoer migrate` adopts the old Node/Supabase system's database in place (DESIGN §17): every
row kept, the schema made the one a fresh migrate builds, duplicate waiting jobs coalesced,
bad rows refused before any change, `--dry-run` read-only, a second run a no-op."""

import asyncio
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from aoer.db.adoption import OLD_COLUMNS
from aoer.db.pool import connect
from aoer.db.schema import migrate
from aoer.errors import MigrationError
from tests.acceptance.conftest import run_aoer
from tests.conftest import _admin, eventually, session_of, with_database
from tests.migration.before import migrated_before
from tests.migration.seed import (
    OLD_TABLES,
    SEED_GRANTS,
    SUPABASE_DEFAULT_PRIVILEGES,
    execute,
    fetch,
    fill,
    fingerprint,
    for_role,
    old_database,
    schema_fingerprint,
    table_rows,
    v1_score,
)

pytestmark = pytest.mark.timeout(300)

THOUSANDS = (
    2400  # tenants: 30,240 signal rows, 2,400 summaries, 7,200 events, 8,040 jobs, 4,800 failures
)
SMALL = 40
# What the old database keeps that is not this schema's (Supabase's and the old app's own).
NOT_OURS = ("auth", "update_updated_at_column()", "auth.jwt()")


@pytest.fixture
def old_db(server_url: str) -> Iterator[str]:
    with old_database(server_url) as url:
        yield url


def aoer_cli(url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_aoer(url, tmp_path, *args, timeout=240, **env)


# The keys adoption adds to the old `aoer_recompute` events (0030), left out of a snapshot.
ADDED_EVENT_KEYS = "event_data - 'aoerScore' - 'visibilityRisk' AS event_data"


def snapshot(url: str) -> dict[str, dict[str, str]]:
    """Every old table's rows, by key, in the old migration's columns (events without the
    keys adoption adds)."""
    return {
        table: table_rows(
            url,
            table,
            [ADDED_EVENT_KEYS if c == "event_data" else c for c in sorted(OLD_COLUMNS[table])],
        )
        for table in OLD_TABLES
    }


def count(url: str, sql: str, *params: Any) -> int:
    [(n,)] = fetch(url, sql, params or None)  # type: ignore[arg-type]
    return int(n)


def without_what_is_not_ours(print_: dict[str, Any]) -> dict[str, Any]:
    return {
        part: [v for v in values if not any(str(v).startswith(x) for x in NOT_OURS)]
        for part, values in print_.items()
    }


async def test_thousands_of_old_rows_are_kept_and_workers_then_recompute_exact_v1(
    old_db: str, tmp_path: Path
) -> None:
    fill(old_db, THOUSANDS)
    before = snapshot(old_db)
    assert all(len(rows) >= 2000 for rows in before.values()), {
        t: len(r) for t, r in before.items()
    }

    await migrate(old_db)
    after = snapshot(old_db)

    for table in ("aiv_raw_signals", "aoer_summary", "metrics_events", "aoer_failures"):
        assert after[table] == before[table], table  # every row, every value
    # Added on purpose: the old events' score under the key the history reads.
    unread = "SELECT count(*) FROM metrics_events WHERE event_data -> 'aoerScore' %s"
    assert count(old_db, unread % "IS DISTINCT FROM event_data -> 'aoer_score'") == 0
    assert count(old_db, unread % "IS NULL") == 0
    assert after["aoer_queue"].keys() == before["aoer_queue"].keys()
    # Changed on purpose: waiting duplicates closed, the jobs keeping their work, jobs in flight.
    coalesced = fetch(
        old_db,
        "SELECT id::text, split_part(error_message, ' ', 4) FROM aoer_queue"
        " WHERE error_message LIKE 'coalesced into job %%'",
    )
    in_flight = fetch(old_db, "SELECT id::text FROM aoer_queue WHERE status = 'processing'")
    assert len(coalesced) == THOUSANDS // 4
    assert len(in_flight) == THOUSANDS // 10
    changed = {str(i) for row in coalesced for i in row} | {str(i) for (i,) in in_flight}
    assert len(changed) == THOUSANDS // 4 * 2 + THOUSANDS // 10
    for job, row in before["aoer_queue"].items():
        if job not in changed:
            assert after["aoer_queue"][job] == row, job
    waiting = fetch(old_db, "SELECT tenant_id FROM aoer_queue WHERE status = 'queued'")
    assert len(waiting) == len(set(waiting)) == THOUSANDS  # one per tenant
    tenants = THOUSANDS + THOUSANDS // 20
    assert count(old_db, "SELECT count(*) FROM tenants WHERE name LIKE 'Tenant %%'") == tenants

    # The workers now recompute every tenant to the exact v1 values.
    assert count(old_db, "SELECT count(queue_tenant_recompute(id, 'low')) FROM tenants") == tenants
    worked = aoer_cli(old_db, tmp_path, "worker", "--drain")
    assert worked.returncode == 0, worked.stdout + worked.stderr
    today = datetime.now(UTC).date()
    signals: dict[str, list[Any]] = {}
    for dealer, day, aeo, geo, ugc in fetch(
        old_db, "SELECT dealer_id::text, date, aeo, geo, ugc FROM aiv_raw_signals"
    ):
        signals.setdefault(dealer, []).append((day, aeo, geo, ugc))
    summaries = fetch(
        old_db, "SELECT tenant_id::text, aoer_score, visibility_risk FROM aoer_summary"
    )
    assert len(summaries) == tenants
    for tenant, score, risk in summaries:
        assert (score, risk) == v1_score(signals.get(tenant, []), today), tenant
    assert (
        count(
            old_db,
            "SELECT count(*) FROM aoer_summary WHERE last_updated < now() - interval '1 hour'",
        )
        == 0
    )


async def test_the_adopted_schema_is_the_one_a_fresh_migrate_builds(
    old_db: str, server_url: str, template_db: str
) -> None:
    fill(old_db, SMALL)
    await migrate(old_db)
    adopted = without_what_is_not_ours(schema_fingerprint(old_db))
    fresh = schema_fingerprint(with_database(server_url, template_db))
    assert adopted == fresh
    assert not any("auth.jwt" in p for p in adopted["policies"])


async def test_duplicate_waiting_jobs_are_coalesced_into_the_earliest_at_the_highest_priority(
    old_db: str,
) -> None:
    tenant = "7d9a1a40-0000-4000-8000-000000000001"
    execute(
        old_db,
        "INSERT INTO aoer_queue (id, tenant_id, priority, status, scheduled_at) VALUES"
        " ('00000000-0000-4000-8000-000000000001', %(t)s, 'low', 'queued',"
        "  now() - interval '30 minutes'),"
        " ('00000000-0000-4000-8000-000000000002', %(t)s, 'urgent', 'queued',"
        "  now() - interval '10 minutes'),"
        " ('00000000-0000-4000-8000-000000000003', %(t)s, 'medium', 'queued',"
        "  now() - interval '20 minutes'),"
        " ('00000000-0000-4000-8000-000000000004', %(t)s, 'high', 'processing', now()),"
        " ('00000000-0000-4000-8000-000000000005', %(t)s, 'low', 'completed', now())",
        {"t": tenant},
    )
    await migrate(old_db)
    jobs = {
        str(row[0])[-1]: row[1:]
        for row in fetch(
            old_db,
            "SELECT id, priority, status, scheduled_at < now() - interval '29 minutes',"
            " error_message, locked_by IS NOT NULL, lease_expires_at <= now()"
            " FROM aoer_queue",
        )
    }
    keeper = "00000000-0000-4000-8000-000000000001"
    merged = f"coalesced into job {keeper} when aoer migrate adopted the old system's database"
    assert jobs == {
        "1": ("urgent", "queued", True, None, False, None),
        "2": ("urgent", "completed", False, merged, False, None),
        "3": ("medium", "completed", False, merged, False, None),
        "4": ("high", "processing", False, None, True, True),  # taken back by lease recovery
        "5": ("low", "completed", False, None, False, None),
    }


async def test_ids_sharing_their_first_8_digits_get_distinct_names(old_db: str) -> None:
    """UUIDv7 ids made in the same minute share their first 8 hex digits: three of them
    once failed the adoption at migration 0016's unique names ("Tenant 0193a5b2 (0193a5b2)"
    twice)."""
    alike = [f"0193a5b2-{n}c00-7000-8000-00000000000{n}" for n in (1, 2, 3)]
    for n, tenant in enumerate(alike):
        execute(
            old_db,
            "INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk)"
            " VALUES (%s, %s, 0.2)",
            (tenant, 50 + n),
        )
    execute(old_db, "INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk)"
                    " VALUES ('e1a63d30-0000-4000-8000-000000000009', 70, 0.2)")  # fmt: skip
    await migrate(old_db)
    names = dict(fetch(old_db, "SELECT id::text, name FROM tenants"))
    assert names == {
        **{tenant: f"Tenant {tenant}" for tenant in alike},
        "e1a63d30-0000-4000-8000-000000000009": "Tenant e1a63d30",
    }


async def test_a_row_written_while_the_adoption_checks_is_checked_too(old_db: str) -> None:
    """A script still writing to the old tables: its open transaction is waited for, and the
    row it commits is checked like any other (it was copied unchecked, and a bad priority
    failed the copy with "null value in column priority")."""
    fill(old_db, SMALL)
    with psycopg.connect(old_db) as writer:
        writer.execute(
            "INSERT INTO aoer_queue (tenant_id, priority) VALUES"
            " ('7d9a1a40-0000-4000-8000-0000000000aa', 'HIGH')"
        )  # open: not committed yet
        adopting = asyncio.create_task(migrate(old_db))

        def waiting_on_the_writer() -> bool:
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            return count(old_db, waiting + " AND datname = current_database()") > 0

        await eventually(waiting_on_the_writer, "the adoption waits for the writer's lock")
        assert not adopting.done(), "the adoption waits for the writer's transaction"
        writer.commit()
        with pytest.raises(MigrationError) as refused:
            await asyncio.wait_for(adopting, 60)
    assert "1 aoer_queue row with a priority other than low, medium, high or urgent" in str(
        refused.value
    )
    assert count(old_db, "SELECT count(*) FROM aoer_queue WHERE priority = 'HIGH'") == 1


async def test_migrating_an_adopted_database_again_changes_nothing(old_db: str) -> None:
    fill(old_db, SMALL)
    assert await migrate(old_db)
    once = fingerprint(old_db)
    assert await migrate(old_db) == []
    assert fingerprint(old_db) == once


def test_dry_run_prints_the_adoption_plan_and_changes_nothing(old_db: str, tmp_path: Path) -> None:
    fill(old_db, SMALL)
    before = fingerprint(old_db)
    planned = aoer_cli(old_db, tmp_path, "migrate", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert fingerprint(old_db) == before
    out = planned.stdout
    assert "adopt the old Node/Supabase system's database in place, keeping every row" in out
    assert f"create {SMALL + SMALL // 20} tenants" in out
    assert f"coalesce {SMALL // 4} duplicate waiting jobs of {SMALL // 4} tenants" in out
    assert "drop the old function compute_aoer_for_tenant(uuid)" in out
    assert "apply migration 0001_core" in out
    assert "apply migration 0013_seed_functions" in out


def test_dry_run_says_which_old_rows_the_workers_retention_will_then_delete(
    old_db: str, tmp_path: Path
) -> None:
    """The adoption keeps every row, and the first worker's daily retention then deleted the
    old history past its ages without a word; the plan now says so, with the settings."""
    tenant = "5e1f0000-0000-4000-8000-000000000001"
    for statement in (
        "INSERT INTO metrics_events (tenant_id, event_type, created_at) VALUES"
        " (%(t)s, 'aoer_recompute', now() - interval '800 days'),"
        " (%(t)s, 'aoer_recompute', now() - interval '500 days'),"
        # Past 400 days but in the month the cutoff falls in: adopted events sit in the
        # default partition, whose rows go by their own time, not a month at a time.
        " (%(t)s, 'aoer_recompute', date_trunc('month', now() - interval '400 days')"
        "                            + interval '1 hour'),"
        " (%(t)s, 'aoer_recompute', now() - interval '10 days')",
        "INSERT INTO aoer_failures (tenant_id, error_message, created_at) VALUES"
        " (%(t)s, 'old', now() - interval '100 days'), (%(t)s, 'new', now())",
        "INSERT INTO aoer_queue (tenant_id, status, completed_at) VALUES"
        " (%(t)s, 'completed', now() - interval '20 days'), (%(t)s, 'completed', now())",
    ):
        execute(old_db, statement, {"t": tenant})
    planned = aoer_cli(old_db, tmp_path, "migrate", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert (
        "note: the first worker's daily retention will then delete 1 finished job older than"
        " 7 days (AOER_RETAIN_JOBS_DAYS), 1 failure older than 30 days"
        " (AOER_RETAIN_FAILURES_DAYS), 3 score history events older than 400 days"
        " (AOER_RETAIN_EVENTS_DAYS); to keep them, set those ages higher before starting workers"
    ) in planned.stdout
    kept = aoer_cli(
        old_db,
        tmp_path,
        "migrate",
        "--dry-run",
        AOER_RETAIN_JOBS_DAYS="3650",
        AOER_RETAIN_FAILURES_DAYS="3650",
        AOER_RETAIN_EVENTS_DAYS="3650",
    )
    assert kept.returncode == 0, kept.stderr
    assert "retention" not in kept.stdout


def test_dry_run_on_a_new_or_current_database_lists_what_is_pending_and_changes_nothing(
    server_url: str, tmp_path: Path
) -> None:
    name = f"aoer_m_{datetime.now(UTC):%H%M%S%f}"
    _admin(server_url, f"CREATE DATABASE {name}")
    url = with_database(server_url, name)
    try:
        before = fingerprint(url)
        planned = aoer_cli(url, tmp_path, "migrate", "--dry-run")
        assert planned.returncode == 0, planned.stderr
        assert "apply migration 0001_core" in planned.stdout
        assert "adopt" not in planned.stdout
        assert fingerprint(url) == before
        assert aoer_cli(url, tmp_path, "migrate").returncode == 0
        current = aoer_cli(url, tmp_path, "migrate", "--dry-run")
        assert current.stdout.strip() == "schema is current: nothing to do"
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


BAD_CASES = {
    "priority": (
        "UPDATE aoer_queue SET priority = 'critical' WHERE id IN"
        " (SELECT id FROM aoer_queue ORDER BY id LIMIT 12)",
        "aoer_queue",
        "12 aoer_queue rows with a priority other than low, medium, high or urgent"
        " (the first 10 of 12)",
        "('critical')",
    ),
    "status": (
        "UPDATE aoer_queue SET status = 'running' WHERE id IN"
        " (SELECT id FROM aoer_queue ORDER BY id LIMIT 12)",
        "aoer_queue",
        "12 aoer_queue rows with a status other than queued, processing, completed or failed",
        "('running')",
    ),
    "score": (
        "UPDATE aoer_summary SET aoer_score = 120.5 WHERE id IN"
        " (SELECT id FROM aoer_summary ORDER BY id LIMIT 12)",
        "aoer_summary",
        "12 aoer_summary rows with an aoer_score outside 0-100 (the first 10 of 12)",
        "(120.50)",
    ),
    "risk": (
        "UPDATE aoer_summary SET visibility_risk = -0.5 WHERE id IN"
        " (SELECT id FROM aoer_summary ORDER BY id LIMIT 12)",
        "aoer_summary",
        "12 aoer_summary rows with a visibility_risk outside 0-1",
        "(-0.50)",
    ),
}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_bad_old_rows_stop_the_adoption_before_any_change_naming_them(
    case: str, old_db: str, tmp_path: Path
) -> None:
    spoil, table, message, value = BAD_CASES[case]
    fill(old_db, SMALL)
    execute(old_db, spoil)  # type: ignore[arg-type]
    [(first,)] = fetch(old_db, f"SELECT id::text FROM {table} ORDER BY id LIMIT 1")  # type: ignore[arg-type]
    before = fingerprint(old_db)
    for args in (("migrate",), ("migrate", "--dry-run")):
        refused = aoer_cli(old_db, tmp_path, *args)
        assert refused.returncode == 1, refused.stdout
        error = " ".join(refused.stderr.split())
        assert "cannot adopt the old system's database; nothing was changed" in error
        assert message in error
        assert f"{first} {value}" in error
        assert fingerprint(old_db) == before  # nothing half-migrated


async def test_what_the_schema_cannot_keep_is_refused_by_name(old_db: str) -> None:
    execute(old_db, "ALTER TABLE aoer_summary ADD COLUMN dealer_name text")
    execute(old_db, "CREATE TABLE tenants (id uuid PRIMARY KEY)")
    execute(old_db, "CREATE VIEW my_report AS SELECT tenant_id FROM aoer_summary")
    execute(old_db, "CREATE SCHEMA aoer_adoption")
    with pytest.raises(MigrationError) as refused:
        await migrate(old_db)
    assert "aoer_summary has columns this schema would not keep: dealer_name" in str(refused.value)
    assert "a relation named tenants already exists" in str(refused.value)
    assert "my_report (a view) uses the old tables" in str(refused.value)
    assert "a schema named aoer_adoption exists" in str(refused.value)
    assert (
        count(old_db, "SELECT count(*) FROM pg_class WHERE relname = 'aoer_schema_migrations'") == 0
    )


async def test_other_roles_grants_and_realtime_publication_carry_over(old_db: str) -> None:
    role = "aoer_test_authenticated"  # cluster-global, like aoer_tenant; left in place
    execute(
        old_db,
        "DO $$ BEGIN CREATE ROLE aoer_test_authenticated NOLOGIN;"
        " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    execute(old_db, "GRANT SELECT ON aoer_summary, metrics_events TO aoer_test_authenticated")
    execute(old_db, "CREATE PUBLICATION aoer_test_realtime FOR TABLE aoer_summary, metrics_events")
    execute(old_db, "ALTER TABLE aoer_summary REPLICA IDENTITY FULL")
    fill(old_db, SMALL)
    await migrate(old_db)
    granted = fetch(
        old_db,
        "SELECT has_table_privilege(%s, 'aoer_summary', 'SELECT'),"
        " has_table_privilege(%s, 'metrics_events', 'SELECT'),"
        " has_table_privilege(%s, 'aoer_queue', 'SELECT')",
        (role, role, role),
    )
    assert granted == [(True, True, False)]
    published = fetch(
        old_db,
        "SELECT tablename FROM pg_publication_tables WHERE pubname = 'aoer_test_realtime'"
        " ORDER BY 1",
    )
    assert published == [("aoer_summary",), ("metrics_events",)]
    identity = fetch(
        old_db,
        "SELECT relname, relreplident FROM pg_class WHERE relname IN"
        " ('aoer_summary', 'metrics_events') ORDER BY 1",
    )
    assert identity == [("aoer_summary", "f"), ("metrics_events", "d")]


async def test_claims_limit_the_adopted_rows_and_functions(old_db: str) -> None:
    fill(old_db, SMALL)
    await migrate(old_db)
    [(mine,), (other,)] = fetch(old_db, "SELECT id::text FROM tenants ORDER BY id LIMIT 2")
    claims = json.dumps({"role": "tenant", "tenant_id": mine})
    with psycopg.connect(old_db) as conn:
        conn.execute("SET ROLE aoer_tenant")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (claims,))
        seen = conn.execute("SELECT DISTINCT tenant_id::text FROM aoer_summary").fetchall()
        events = conn.execute("SELECT DISTINCT tenant_id::text FROM metrics_events").fetchall()
        theirs = conn.execute("SELECT * FROM compute_aoer_for_tenant(%s)", (other,)).fetchall()
        own = conn.execute("SELECT tenant_id::text FROM compute_aoer_for_tenant(%s)", (mine,))
        assert own.fetchall() == [(mine,)]
    assert seen == events == [(mine,)]
    assert theirs == []


@pytest.fixture
def stand_in_role(server_url: str) -> Iterator[Callable[..., str]]:
    """Makes roles standing in for Supabase's (`authenticated`, `service_role`): roles are
    cluster-wide, so each gets a name of its own, and all are dropped after the test (whose
    databases are gone by then)."""
    made: list[str] = []

    def make(attributes: str = "") -> str:
        role = f"aoer_test_supabase_{uuid.uuid4().hex[:10]}"
        _admin(server_url, f"CREATE ROLE {role} NOLOGIN NOINHERIT {attributes}")
        made.append(role)
        return role

    yield make
    for role in made:
        _admin(server_url, f"DROP ROLE IF EXISTS {role}")


# Writes a tenant's PostgREST session must not make on an adopted database: its score, the
# queue's pause switch, every tenant's score history (a SECURITY DEFINER maintenance function
# without a caller check), a forged history point, a table emptied (RLS does not stop TRUNCATE).
FORBIDDEN_WRITES: tuple[tuple[str, str], ...] = (
    ("summary", "UPDATE aoer_summary SET aoer_score = 100"),
    ("pause", "UPDATE aoer_queue_state SET paused = true"),
    ("history", "SELECT aoer_drop_partitions_before('metrics_events', '2999-01-01')"),
    ("forged event", "INSERT INTO metrics_events (tenant_id, event_type, event_data)"
     " SELECT tenant_id, 'aoer_recompute', '{\"aoerScore\": 100}' FROM aoer_summary"),
    ("own job", "UPDATE aoer_queue SET status = 'completed'"),
    ("truncate", "TRUNCATE aoer_summary"),
)  # fmt: skip


def is_allowed(conn: psycopg.Connection[Any], statement: str) -> bool:
    """Whether `statement` ran (autocommit: a refused one leaves nothing behind)."""
    try:
        conn.execute(statement)  # type: ignore[arg-type]
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def as_role(url: str, role: str, tenant: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    claims = json.dumps({"role": "authenticated", "tenant_id": tenant})
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (claims,))
    return conn


@pytest.mark.parametrize("defaults", [True, False], ids=["supabase-defaults", "seed-grants-only"])
async def test_the_old_systems_users_read_their_own_rows_after_adoption_and_write_nothing(
    server_url: str, stand_in_role: Callable[..., str], defaults: bool
) -> None:
    authenticated = stand_in_role()
    before = for_role(SUPABASE_DEFAULT_PRIVILEGES, authenticated) if defaults else None
    with old_database(server_url, before) as url:
        execute(url, for_role(SEED_GRANTS, authenticated))
        fill(url, SMALL)
        await migrate(url)
        [(mine,)] = fetch(url, "SELECT min(tenant_id::text) FROM aoer_summary")
        [(other,)] = fetch(url, "SELECT max(tenant_id::text) FROM aoer_summary")
        scores = fetch(url, "SELECT tenant_id, aoer_score FROM aoer_summary ORDER BY 1")
        months = count(
            url, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'metrics_events'::regclass"
        )
        with as_role(url, authenticated, mine) as conn:
            allowed = [what for what, write in FORBIDDEN_WRITES if is_allowed(conn, write)]
            summaries = conn.execute("SELECT tenant_id::text FROM aoer_summary").fetchall()
            dashboard = conn.execute(
                "SELECT tenant_id::text, risk_level FROM v_aoer_dashboard"
            ).fetchall()
            computed = conn.execute(
                "SELECT tenant_id::text FROM compute_aoer_for_tenant(%s)", (mine,)
            ).fetchall()
            # The old dashboards' "refresh": its own tenant, as the old SECURITY DEFINER
            # function allowed ("permission denied for table aoer_queue" after adoption).
            [(job,)] = conn.execute("SELECT queue_tenant_recompute(%s, 'high')", (mine,)).fetchall()
            [(again,)] = conn.execute("SELECT queue_tenant_recompute(%s)", (mine,)).fetchall()
            refused = []
            for call in ("queue_tenant_recompute(%s)", "aoer_enqueue_as_worker(%s, 'urgent')"):
                try:
                    conn.execute(f"SELECT {call}", (other,))  # type: ignore[arg-type]
                except psycopg.Error as exc:
                    refused.append(str(exc).splitlines()[0])
            queued = conn.execute("SELECT sum(job_count) FROM get_aoer_queue_status()").fetchall()
        assert refused == [f"unknown tenant {other}", f"tenant {other} is not yours to queue"]
        assert again == job  # coalesced: one waiting job a tenant
        assert fetch(url, "SELECT tenant_id::text, priority, status FROM aoer_queue WHERE id = %s",
                     (job,)) == [(mine, "high", "queued")]  # fmt: skip
        assert count(url, "SELECT count(*) FROM aoer_queue WHERE tenant_id = %s"
                          " AND priority = 'urgent'", other) == 0  # fmt: skip
        assert summaries == computed == [(mine,)]
        assert [tenant for tenant, _ in dashboard] == [mine]
        mine_waiting = count(
            url,
            "SELECT count(*) FROM aoer_queue WHERE tenant_id = %s"
            " AND status IN ('queued', 'processing')",
            mine,
        )
        assert allowed == []
        assert queued == [(mine_waiting,)]
        assert 0 < mine_waiting < SMALL
        assert fetch(url, "SELECT tenant_id, aoer_score FROM aoer_summary ORDER BY 1") == scores
        assert fetch(url, "SELECT paused FROM aoer_queue_state") == [(False,)]
        assert (
            months
            == count(
                url, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'metrics_events'::regclass"
            )
            > 0
        )


async def test_a_role_that_bypasses_rls_keeps_the_old_tables_and_gets_nothing_internal(
    server_url: str, stand_in_role: Callable[..., str]
) -> None:
    service = stand_in_role("BYPASSRLS")  # Supabase's service_role: the admin key
    with old_database(server_url, for_role(SUPABASE_DEFAULT_PRIVILEGES, service)) as url:
        fill(url, SMALL)
        await migrate(url)
        [(tenant,)] = fetch(url, "SELECT min(id::text) FROM tenants")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(service)))
            [(job,)] = conn.execute(
                "SELECT queue_tenant_recompute(%s, 'urgent')", (tenant,)
            ).fetchall()  # the old scripts' rpc, as before
            internal = (
                "UPDATE aoer_queue_state SET paused = true",
                "SELECT * FROM model_audit",
                "TRUNCATE aoer_summary",
                "SELECT aoer_drop_partitions_before('metrics_events', '2999-01-01')",
            )
            allowed = [statement for statement in internal if is_allowed(conn, statement)]
        assert allowed == []
        assert fetch(url, "SELECT priority FROM aoer_queue WHERE id = %s", (job,)) == [("urgent",)]


async def test_default_privileges_give_other_roles_nothing_internal_also_on_new_months(
    server_url: str, stand_in_role: Callable[..., str]
) -> None:
    anon = stand_in_role()
    name = f"aoer_supa_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f"CREATE DATABASE {name}")
    url = with_database(server_url, name)
    try:
        execute(url, for_role(SUPABASE_DEFAULT_PRIVILEGES, anon))
        await migrate(url)  # a fresh database, not an adoption
        execute(url, "SELECT aoer_create_partitions_ahead('metrics_events', 14)")  # new months
        held = fetch(
            url,
            "SELECT c.relname, a.privilege_type FROM pg_class c"
            " CROSS JOIN LATERAL aclexplode(c.relacl) a"
            " WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = %s::regrole"
            " ORDER BY 1, 2",
            (anon,),
        )
        functions = fetch(
            url,
            "SELECT p.proname FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a"
            " WHERE p.pronamespace = 'public'::regnamespace AND a.grantee = %s::regrole",
            (anon,),
        )
        readable = [
            "aiv_raw_signals",
            "aoer_failures",
            "aoer_queue",
            "aoer_summary",
            "metrics_events",
            "tenants",
            "v_aoer_dashboard",
            "v_aoer_queue_status",
        ]
        assert held == [(table, "SELECT") for table in readable]
        assert sorted(functions) == [
            ("compute_aoer_for_tenant",),
            ("get_aoer_queue_status",),
            ("queue_tenant_recompute",),
            ("update_aoer_summary",),
        ]
        assert count(url, "SELECT aoer_confine_other_roles()") == 0  # nothing left to revoke
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_the_old_systems_score_history_is_charted_after_adoption(old_db: str) -> None:
    tenant = UUID("7d9a1a40-0000-4000-8000-000000000002")
    written = {  # as the old update_aoer_summary wrote it
        "aoer_score": 72.35,
        "visibility_risk": 0.2,
        "metrics": {"avgAEO": 80.1, "avgGEO": 70, "avgUGC": 60, "dataPoints": 12},
    }
    execute(
        old_db,
        "INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at) VALUES"
        " (%s, 'aoer_recompute', %s, now() - interval '2 days'),"
        ' (%s, \'aoer_recompute\', \'{"aoer_score": "64.10", "visibility_risk": "0.40"}\','
        "  now() - interval '1 day'),"
        " (%s, 'aoer_recompute', '{\"note\": \"no score\"}', now() - interval '3 days')",
        (tenant, Jsonb(written), tenant, tenant),
    )
    await migrate(old_db)
    conn = await connect(old_db)
    try:
        points = await session_of(conn).scores.history(tenant, 30)
    finally:
        await conn.close()
    assert [(p.aoer_score, p.visibility_risk, p.grade, p.risk_level) for p in points] == [
        (Decimal("72.35"), Decimal("0.2"), "Good", "Low"),
        (Decimal("64.10"), Decimal("0.40"), "Good", "Medium"),
    ]
    assert points[0].metrics["avgAEO"] == Decimal("80.1")
    assert points[0].metrics["dataPoints"] == 12
    [(kept,)] = fetch(old_db, "SELECT event_data FROM metrics_events WHERE event_data ? 'metrics'")
    assert kept == {**written, "aoerScore": 72.35, "visibilityRisk": 0.2}  # old keys kept


VIEWS_COLUMNS = (
    "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position)"
    " FROM information_schema.columns"
    " WHERE table_schema = 'public' AND table_name IN ('v_aoer_dashboard', 'v_aoer_queue_status')"
    " GROUP BY 1 ORDER BY 1"
)


async def test_the_views_keep_the_old_columns_first_and_count_waiting_and_running_jobs_only(
    old_db: str, server_url: str, template_db: str
) -> None:
    fill(old_db, SMALL)
    old = dict(fetch(old_db, VIEWS_COLUMNS))
    await migrate(old_db)
    fresh = with_database(server_url, template_db)
    for url in (old_db, fresh):
        for view, columns in fetch(url, VIEWS_COLUMNS):
            assert columns[: len(old[view])] == old[view], (url, view)
    assert old["v_aoer_dashboard"][5] == "aoer_grade"  # as the old dashboards select it
    listed = fetch(
        old_db, "SELECT status, priority, job_count, oldest_job FROM v_aoer_queue_status"
    )
    function = fetch(
        old_db, "SELECT status, priority, job_count, oldest_job FROM get_aoer_queue_status()"
    )
    expected = fetch(
        old_db,
        "SELECT status, priority, count(*), min(scheduled_at) FROM aoer_queue"
        " WHERE status IN ('queued', 'processing') GROUP BY 1, 2",
    )
    assert sorted(listed) == sorted(function) == sorted(expected)
    assert {status for status, *_ in listed} == {"queued", "processing"}
    grades = fetch(old_db, "SELECT aoer_grade, count(*) FROM v_aoer_dashboard GROUP BY 1")
    assert sum(n for _, n in grades) == SMALL


async def test_a_database_adopted_before_0030_gets_the_fixes_when_it_migrates(
    server_url: str, stand_in_role: Callable[..., str]
) -> None:
    authenticated = stand_in_role()
    with migrated_before(server_url, 30) as url:
        # What an adoption by 0029 left: the old grants carried over as they were, an old event.
        tenant = "7d9a1a40-0000-4000-8000-000000000003"
        execute(url, "INSERT INTO tenants (id, name) VALUES (%s, 'Tenant 7d9a1a40')", (tenant,))
        execute(
            url,
            "INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)"
            " VALUES (%s, 'aoer_recompute', '{\"aoer_score\": 55.5, \"visibility_risk\": 0.6}',"
            " now() - interval '2 days')",
            (tenant,),
        )
        execute(
            url,
            for_role(
                "GRANT SELECT, INSERT, UPDATE ON aoer_summary, aoer_queue TO {role};"
                " GRANT ALL ON aoer_queue_state TO {role};"
                " GRANT SELECT ON tenants, v_aoer_dashboard, v_aoer_queue_status TO {role};"
                " GRANT EXECUTE ON FUNCTION aoer_drop_partitions_before(regclass, timestamptz)"
                " TO {role}",
                authenticated,
            ),
        )
        assert (await migrate(url))[0].version == 30
        with as_role(url, authenticated, tenant) as conn:
            allowed = [what for what, write in FORBIDDEN_WRITES if is_allowed(conn, write)]
            dashboard = conn.execute("SELECT aoer_grade FROM v_aoer_dashboard").fetchall()
        assert allowed == []
        assert dashboard == []  # readable (no summary yet): the view kept its grant
        assert fetch(url, "SELECT event_data -> 'aoerScore' FROM metrics_events") == [(55.5,)]
