"""Old system's databases for the adoption tests: built by `seed_schema.sql`, filled in SQL,
and fingerprinted (schema and data) to prove what a migration changed or left alone."""

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from tests.conftest import _admin, with_database

SEED_SCHEMA = Path(__file__).with_name("seed_schema.sql")
OLD_TABLES = ("aiv_raw_signals", "aoer_summary", "metrics_events", "aoer_queue", "aoer_failures")
CENT = Decimal("0.01")

# Rows for `tenants` tenants in every old table (setseed: the same rows every run):
# 12 signal days each over 0-33 days ago (some outside the window, some aeo missing), a summary
# each, 3 events each, a completed and a failed job each, two waiting jobs for every fourth
# tenant (coalesced by the adoption), a job in flight for every tenth, 2 failures each; and
# `tenants // 20` more dealers that appear only in the signals.
FILL: LiteralString = """
SELECT setseed(0.42);
CREATE TEMP TABLE fill_tenants AS
SELECT g AS n, md5('old-tenant-' || g)::uuid AS id
FROM generate_series(1, %(tenants)s) g;

INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv,
                             observed_rar, created_at, updated_at)
SELECT t.id, current_date - d * 3,
       round((random() * 100)::numeric, 2),
       CASE WHEN (t.n + d) %% 9 = 0 THEN NULL ELSE round((random() * 100)::numeric, 2) END,
       CASE WHEN (t.n + d) %% 7 = 0 THEN NULL ELSE round((random() * 100)::numeric, 2) END,
       CASE WHEN t.n %% 11 = 0 THEN NULL ELSE round((random() * 100)::numeric, 2) END,
       round((random() * 100)::numeric, 2),
       round((random() * 100)::numeric, 2),
       round((random() * 500)::numeric, 2),
       now() - make_interval(days => d * 3), now() - make_interval(days => d * 3)
FROM (SELECT n, id FROM fill_tenants
      UNION ALL
      SELECT 100000 + g, md5('signals-only-' || g)::uuid
      FROM generate_series(1, %(tenants)s / 20) g) t
CROSS JOIN generate_series(0, 11) d;

INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk, metrics, last_updated,
                          created_at, updated_at)
SELECT id, round((random() * 100)::numeric, 2), (ARRAY[0.2, 0.4, 0.6, 0.8, 1.0])[1 + n %% 5],
       jsonb_build_object('avgAEO', round((random() * 100)::numeric, 2), 'dataPoints', n %% 30),
       now() - make_interval(hours => n), now() - make_interval(days => 40, hours => n),
       now() - make_interval(hours => n)
FROM fill_tenants;

INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)
SELECT id, 'aoer_recompute',
       jsonb_build_object('aoer_score', round((random() * 100)::numeric, 2), 'k', k),
       now() - make_interval(days => k, hours => n)
FROM fill_tenants CROSS JOIN generate_series(1, 3) k;

INSERT INTO aoer_queue (tenant_id, priority, status, retry_count, max_retries, scheduled_at,
                        started_at, completed_at, error_message, created_at, updated_at)
SELECT id, (ARRAY['low', 'medium', 'high', 'urgent'])[1 + (n + k) %% 4],
       CASE k WHEN 1 THEN 'completed' ELSE 'failed' END,
       CASE k WHEN 1 THEN 0 ELSE 3 END, 3,
       now() - make_interval(days => 2, hours => k), now() - make_interval(days => 2),
       now() - make_interval(days => 1), CASE k WHEN 2 THEN 'boom' END,
       now() - make_interval(days => 3, hours => k), now() - make_interval(days => 1)
FROM fill_tenants CROSS JOIN generate_series(1, 2) k;
INSERT INTO aoer_queue (tenant_id, priority, status, scheduled_at, created_at, updated_at)
SELECT id, (ARRAY['low', 'medium', 'high', 'urgent'])[1 + (n * k) %% 4], 'queued',
       now() - make_interval(mins => 10 * k + n %% 7), now() - make_interval(mins => 10 * k),
       now() - make_interval(mins => 10 * k)
FROM fill_tenants CROSS JOIN generate_series(1, 2) k
WHERE n %% 4 = 0 OR k = 1;
INSERT INTO aoer_queue (tenant_id, priority, status, scheduled_at, started_at, created_at)
SELECT id, 'medium', 'processing', now() - interval '5 minutes', now() - interval '4 minutes',
       now() - interval '5 minutes'
FROM fill_tenants WHERE n %% 10 = 1;

INSERT INTO aoer_failures (tenant_id, error_message, error_data, retry_count, created_at)
SELECT id, 'old failure ' || k, jsonb_build_object('function', 'update_aoer_summary'), k,
       now() - make_interval(days => k)
FROM fill_tenants CROSS JOIN generate_series(1, 2) k;
"""


# What Supabase does for its `anon` and `authenticated` roles in every project: whatever the
# migrating role creates in schema public is theirs too (run before the old migration).
SUPABASE_DEFAULT_PRIVILEGES: LiteralString = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO {role};
"""
# The old migration's own grants to `authenticated` (20241220000002_aoer_tables.sql), verbatim
# but for the role's name: roles are cluster-wide, so each test names its own.
SEED_GRANTS: LiteralString = """
GRANT SELECT, INSERT, UPDATE ON aoer_summary TO {role};
GRANT SELECT, INSERT ON metrics_events TO {role};
GRANT SELECT, INSERT, UPDATE ON aoer_queue TO {role};
GRANT SELECT, INSERT ON aoer_failures TO {role};
GRANT SELECT ON v_aoer_dashboard TO {role};
GRANT SELECT ON v_aoer_queue_status TO {role};
GRANT EXECUTE ON FUNCTION compute_aoer_for_tenant(UUID) TO {role};
GRANT EXECUTE ON FUNCTION update_aoer_summary(UUID) TO {role};
GRANT EXECUTE ON FUNCTION queue_tenant_recompute(UUID, VARCHAR) TO {role};
GRANT EXECUTE ON FUNCTION get_aoer_queue_status() TO {role};
"""


def for_role(template: LiteralString, role: str) -> sql.Composed:
    return sql.SQL(template).format(role=sql.Identifier(role))


@contextmanager
def old_database(server_url: str, before: sql.Composable | None = None) -> Iterator[str]:
    """A database the old system's migration built (after `before`, when given); dropped
    afterwards."""
    name = f"aoer_old_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f"CREATE DATABASE {name}")
    url = with_database(server_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            if before is not None:
                conn.execute(before)
            conn.execute(SEED_SCHEMA.read_text())  # type: ignore[arg-type]
        yield url
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fill(url: str, tenants: int) -> None:
    # Client-side binding: one round trip for the whole script.
    with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(FILL, {"tenants": tenants})


def execute(url: str, sql: LiteralString, params: Any = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


def fetch(url: str, sql: LiteralString, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def table_rows(url: str, table: str, columns: list[str]) -> dict[str, str]:
    """`columns` of every row of `table` as text, by key (id; dealer and date for signals)."""
    key = "dealer_id || ' ' || date" if table == "aiv_raw_signals" else "id::text"
    listed = ", ".join(columns)
    sql = f"SELECT {key} AS k, (SELECT row_to_json(x)::text FROM (SELECT {listed}) x) FROM {table}"
    return {str(k): str(v) for k, v in fetch(url, sql)}  # type: ignore[arg-type]


SCHEMA_FINGERPRINT: LiteralString = """
SELECT json_build_object(
  'schemas', (SELECT json_agg(nspname ORDER BY nspname) FROM pg_namespace
              WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'),
  'columns', (SELECT json_agg(concat_ws(' ', table_schema, table_name, column_name, data_type,
                              numeric_precision, numeric_scale, character_maximum_length,
                              is_nullable, column_default, is_generated, generation_expression)
                              ORDER BY table_schema, table_name, column_name)
              FROM information_schema.columns
              WHERE table_schema NOT IN ('pg_catalog', 'information_schema')),
  'constraints', (SELECT json_agg(conrelid::regclass::text || ' ' || conname || ' '
                                  || pg_get_constraintdef(oid) ORDER BY 1)
                  FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  'indexes', (SELECT json_agg(indexdef ORDER BY indexdef) FROM pg_indexes
              WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),
  'policies', (SELECT json_agg(concat_ws(' ', tablename, policyname, roles::text, cmd, qual,
                                         with_check) ORDER BY tablename, policyname)
               FROM pg_policies),
  'functions', (SELECT json_agg(p.oid::regprocedure::text || ' '
                                || md5(pg_get_functiondef(p.oid))
                                || ' ' || coalesce(p.proacl::text, '') ORDER BY 1)
                FROM pg_proc p
                WHERE p.pronamespace::regnamespace::text NOT IN ('pg_catalog',
                                                                'information_schema')
                  AND p.prokind IN ('f', 'p')),
  'views', (SELECT json_agg(schemaname || '.' || viewname || ' ' || md5(definition)
                            ORDER BY 1) FROM pg_views
            WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),
  'triggers', (SELECT json_agg(tgrelid::regclass::text || ' ' || tgname ORDER BY 1)
               FROM pg_trigger WHERE NOT tgisinternal),
  'tables', (SELECT json_agg(c.oid::regclass::text || ' rls=' || c.relrowsecurity || ' '
                             || coalesce(c.relacl::text, '') ORDER BY 1)
             FROM pg_class c
             WHERE c.relkind IN ('r', 'v', 'S')
               -- Not a session's temporary tables: one that `fill` left is dropped as its
               -- backend exits, and the fingerprint could catch it half gone (its OID shown
               -- in place of its name).
               AND c.relpersistence <> 't'
               AND c.relnamespace::regnamespace::text NOT IN ('pg_catalog',
                                                             'information_schema',
                                                             'pg_toast'))
)::text
"""


# Monthly partitions (`<table>_pYYYY_MM`, 0014) exist for the months the data covers, so two
# databases with the same schema and different rows differ in them: they are left out.
MONTH_PARTITION = re.compile(r"\b\w+_p\d{4}_\d{2}\b")


def schema_fingerprint(url: str) -> dict[str, Any]:
    [(text,)] = fetch(url, SCHEMA_FINGERPRINT)
    parts: dict[str, list[str] | None] = json.loads(text)
    return {
        part: sorted(v for v in values or [] if not MONTH_PARTITION.search(v))
        for part, values in parts.items()
    }


def data_fingerprint(url: str) -> dict[str, str]:
    """An md5 of every row of every table in schema public."""
    tables = [
        str(t)
        for (t,) in fetch(
            url,
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind = 'r' ORDER BY 1",
        )
    ]
    found = {}
    for table in tables:
        sql = f"SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM {table} r"
        [(digest,)] = fetch(url, sql)  # type: ignore[arg-type]
        found[table] = str(digest)
    return found


def fingerprint(url: str) -> dict[str, Any]:
    return {"schema": schema_fingerprint(url), "data": data_fingerprint(url)}


def v1_score(
    rows: list[tuple[date, Decimal | None, Decimal | None, Decimal | None]], today: date
) -> tuple[Decimal, Decimal]:
    """DESIGN §3 in Python decimals over (date, aeo, geo, ugc) rows: (score, risk)."""
    window = [r for r in rows if r[1] is not None and 0 <= (today - r[0]).days <= 30]
    n = len(window)
    if n == 0:
        return Decimal("0.00"), Decimal("1.00")

    def average(values: list[Decimal]) -> Decimal:
        if not values:
            return Decimal("0.00")
        return (sum(values, Decimal(0)) / len(values)).quantize(CENT, ROUND_HALF_UP)

    with localcontext() as ctx:
        ctx.prec = 60
        aeo = [r[1] for r in window if r[1] is not None]
        avg_aeo = average(aeo)
        avg_geo = average([r[2] for r in window if r[2] is not None])
        avg_ugc = average([r[3] for r in window if r[3] is not None])
        volatility = Decimal("0.00")
        if n > 1:
            mean = sum(aeo, Decimal(0)) / n
            variance = sum(((x - mean) ** 2 for x in aeo), Decimal(0)) / (n - 1)
            volatility = variance.sqrt().quantize(CENT, ROUND_HALF_UP)
        weighted = avg_aeo * Decimal("0.40") + avg_geo * Decimal("0.35") + avg_ugc * Decimal("0.25")
        score = (weighted * (1 - min(volatility / 20, Decimal("0.30")))).quantize(
            CENT, ROUND_HALF_UP
        )
    days_since = (today - max(r[0] for r in window)).days
    if n < 5:
        risk = Decimal("0.80")
    elif days_since > 7:
        risk = Decimal("0.60")
    elif volatility > 15:
        risk = Decimal("0.40")
    else:
        risk = Decimal("0.20")
    return score, risk
