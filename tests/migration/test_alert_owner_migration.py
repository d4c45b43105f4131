"""0036 records the organisation each alert belongs to, for the alerts raised before it too:
from the rule that raised it, or, when a move (0034) or a person deleted that rule since,
from the rule's create audit row, which the alert's dedup key names."""

import asyncio

import psycopg
import pytest

from aoer.db.schema import migrate
from aoer.errors import MigrationError
from tests.migration.before import migrated_before

ALERT_OWNERS = 36


def test_existing_alerts_learn_whose_rule_raised_them(server_url: str) -> None:
    with migrated_before(server_url, ALERT_OWNERS) as url:
        with psycopg.connect(url) as conn:

            def one(sql: str, *params: object) -> object:
                return conn.execute(sql, params).fetchone()[0]  # type: ignore[index]

            group = one("INSERT INTO organizations (name) VALUES ('Group') RETURNING id")
            tenant = one("INSERT INTO tenants (name, org_id) VALUES ('T', %s) RETURNING id", group)
            for who, scope, owner, audited_as in (
                ("org-made", "tenant", group, "org"),
                ("admin-made", "tenant", None, "admin"),
                ("org-wide", "org", None, "admin"),  # an administrator's rule for the group
                ("org-made-deleted", "tenant", group, "org"),
                ("admin-made-deleted", "tenant", None, "admin"),
                ("org-wide-deleted", "org", None, "admin"),
            ):
                rule = one(
                    "INSERT INTO alert_rules (scope, org_id, tenant_id, kind, created_by,"
                    " owner_org) VALUES (%s, %s, %s, 'grade_down', %s, %s) RETURNING id",
                    scope, group if scope == "org" else None,
                    tenant if scope == "tenant" else None, who, owner,
                )  # fmt: skip
                conn.execute(
                    "INSERT INTO audit_log (actor, role, action, org_id, tenant_id, target)"
                    " VALUES (%s, %s, 'alert_rule.create', %s, %s, %s)",
                    (who, audited_as, group, tenant if scope == "tenant" else None, str(rule)),
                )
                conn.execute(
                    "INSERT INTO alerts (rule_id, tenant_id, kind, dedup_key, data)"
                    " VALUES (%s, %s, 'grade_down', %s || ':' || %s || ':job', %s)",
                    (rule, tenant, str(rule), str(tenant), f'{{"who": "{who}"}}'),
                )
                if who.endswith("-deleted"):
                    conn.execute("DELETE FROM alert_rules WHERE id = %s", (rule,))
        applied = asyncio.run(migrate(url))
        assert applied[0].version == ALERT_OWNERS
        with psycopg.connect(url) as conn:
            owners = dict(conn.execute("SELECT data ->> 'who', owner_org FROM alerts").fetchall())
    assert owners == {
        "org-made": group,
        "admin-made": None,
        "org-wide": group,
        "org-made-deleted": group,
        "admin-made-deleted": None,
        "org-wide-deleted": group,
    }


def test_a_failed_migration_says_that_nothing_was_changed(server_url: str) -> None:
    with migrated_before(server_url, ALERT_OWNERS) as url:
        with psycopg.connect(url) as conn:
            conn.execute("ALTER TABLE alerts ADD COLUMN owner_org text")  # in 0036's way
        with pytest.raises(MigrationError) as failed:
            asyncio.run(migrate(url))
        assert str(failed.value).startswith(
            "migration 0036_alerts_stay_with_their_organisation failed, so nothing was changed:"
        )
        with psycopg.connect(url) as conn:
            [done] = conn.execute("SELECT max(version) FROM aoer_schema_migrations").fetchone()  # type: ignore[misc]
    assert done == ALERT_OWNERS - 1
