"""0014_partitions converts `aiv_raw_signals` and `metrics_events` to monthly partitions in
place, with their rows: nothing lost or changed, the golden cases score the same after it,
and the tables keep their grants, Row Level Security and keys."""

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from aoer.db.schema import migrate
from tests.conftest import GOLDEN
from tests.migration.before import migrated_before

PARTITIONING = 14
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())["cases"]
CHECKSUMS = {
    "aiv_raw_signals": "SELECT count(*), md5(string_agg(r::text, ',' ORDER BY dealer_id, date))"
    " FROM aiv_raw_signals r",
    "metrics_events": "SELECT count(*), md5(string_agg(e::text, ',' ORDER BY id))"
    " FROM metrics_events e",
}
SCORES = (
    "SELECT tenant_id::text, aoer_score::text, visibility_risk::text, metrics::text"
    " FROM aoer_compute_scores(%s::uuid[]) ORDER BY 1"
)


@pytest.fixture
def before_partitioning(server_url: str) -> Iterator[str]:
    """A database migrated up to (not including) 0014, as an installed system would be."""
    with migrated_before(server_url, PARTITIONING) as url:
        yield url


def add_data(conn: psycopg.Connection[Any]) -> list[str]:
    """The golden cases' tenants and signals, plus 300 tenants with 90 days of signals and a
    year and a half of events (months before the migration, and today)."""
    columns = ("seo", "aeo", "geo", "ugc", "geolocal", "observed_aiv", "observed_rar")
    golden = []
    for case in CASES:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (case["tenant_id"], "g"))
        golden.append(case["tenant_id"])
        for row in case["signals"]:
            conn.execute(
                "INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal,"
                " observed_aiv, observed_rar) VALUES (%s, current_date - %s::integer,"
                " %s, %s, %s, %s, %s, %s, %s)",
                (case["tenant_id"], row["days_ago"], *(row.get(c) for c in columns)),
            )
    conn.execute("INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, 300) g")
    conn.execute(
        """INSERT INTO aiv_raw_signals (dealer_id, date, aeo, geo, ugc)
           SELECT t.id, current_date - d, 40 + d % 20, 30, 20
           FROM tenants t, generate_series(0, 89) d WHERE t.name <> 'g'"""
    )
    conn.execute(
        """INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)
           SELECT t.id, 'aoer_recompute', jsonb_build_object('aoerScore', d),
                  now() - make_interval(days => d)
           FROM tenants t, generate_series(0, 540, 9) d"""
    )
    return golden


def test_partitioning_keeps_every_row_the_scores_and_the_protections(
    before_partitioning: str,
) -> None:
    url = before_partitioning
    with psycopg.connect(url) as conn:
        golden = add_data(conn)
        conn.commit()
        before = {t: conn.execute(q).fetchone() for t, q in CHECKSUMS.items()}  # type: ignore[arg-type]
        scores_before = conn.execute(SCORES, (golden,)).fetchall()

    applied = asyncio.run(migrate(url))
    assert PARTITIONING in [m.version for m in applied]

    with psycopg.connect(url) as conn:
        after = {t: conn.execute(q).fetchone() for t, q in CHECKSUMS.items()}  # type: ignore[arg-type]
        assert after == before
        assert before["aiv_raw_signals"][0] > 27_000  # type: ignore[index]
        assert conn.execute(SCORES, (golden,)).fetchall() == scores_before
        by_tenant = {c["tenant_id"]: c for c in CASES}
        for tenant, score, risk, _ in scores_before:
            expected = by_tenant[tenant]["expected"]
            assert Decimal(score) == Decimal(expected["aoer_score"]), by_tenant[tenant]["name"]
            assert Decimal(risk) == Decimal(expected["visibility_risk"])

        kinds = dict(
            conn.execute(
                "SELECT relname, relkind FROM pg_class"
                " WHERE relname IN ('aiv_raw_signals', 'metrics_events')"
            ).fetchall()
        )
        assert kinds == {"aiv_raw_signals": "p", "metrics_events": "p"}
        # Every month with rows got its own partition: the default holds nothing.
        for table in ("aiv_raw_signals_default", "metrics_events_default"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)  # type: ignore[arg-type]
        months = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'metrics_events'::regclass"
        ).fetchone()
        assert months is not None
        assert months[0] >= 19  # 18 months back, this one, ahead, default

        keys = dict(
            conn.execute(
                """SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
                   WHERE contype = 'p'
                     AND conrelid IN ('aiv_raw_signals'::regclass, 'metrics_events'::regclass)"""
            ).fetchall()
        )
        assert keys == {  # the partition key's columns; 0017 carries the components too
            "aiv_raw_signals": "PRIMARY KEY (dealer_id, date)"
            " INCLUDE (seo, aeo, geo, ugc, geolocal)",
            "metrics_events": "PRIMARY KEY (id, created_at)",
        }
        grants = {
            (t, g, p)
            for t, g, p in conn.execute(
                """SELECT table_name, grantee, privilege_type
                   FROM information_schema.role_table_grants
                   WHERE table_name IN ('aiv_raw_signals', 'metrics_events')
                     AND grantee IN ('aoer_tenant', 'aoer_app')"""
            )
        }
        assert {
            ("aiv_raw_signals", "aoer_tenant", "SELECT"),
            ("aiv_raw_signals", "aoer_tenant", "INSERT"),
            ("aiv_raw_signals", "aoer_tenant", "UPDATE"),
            ("metrics_events", "aoer_tenant", "SELECT"),
            ("metrics_events", "aoer_app", "INSERT"),
            ("metrics_events", "aoer_app", "DELETE"),
        } <= grants
        assert ("metrics_events", "aoer_tenant", "INSERT") not in grants
        policies = {
            (t, p)
            for t, p in conn.execute(
                "SELECT tablename, policyname FROM pg_policies"
                " WHERE tablename IN ('aiv_raw_signals', 'metrics_events')"
            )
        }
        assert policies == {
            ("aiv_raw_signals", "aiv_raw_signals_tenant_or_org"),
            ("aiv_raw_signals", "aoer_app_all_rows"),
            ("metrics_events", "metrics_events_tenant_or_org"),
            ("metrics_events", "aoer_app_all_rows"),
        }
        # A tenant session sees its own rows through the parent, and nothing without claims.
        some = str(conn.execute("SELECT id FROM tenants WHERE name = 'd1'").fetchone()[0])  # type: ignore[index]
        with conn.transaction():
            conn.execute("SET LOCAL ROLE aoer_tenant")
            conn.execute(
                "SELECT set_config('request.jwt.claims', %s, true)",
                (json.dumps({"tenant_id": some}),),
            )
            seen = conn.execute("SELECT DISTINCT dealer_id::text FROM aiv_raw_signals").fetchall()
            assert seen == [(some,)]
