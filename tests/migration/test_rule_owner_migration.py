"""0034 records the organisation each alert rule was made in, for the rules made before it too
(an organisation's own; a tenant's from its create audit row, else the tenant's organisation
now), so that moving a tenant deletes the rules the organisation it leaves made for it."""

import asyncio

import psycopg

from aoer.db.schema import migrate
from tests.migration.before import migrated_before

RULE_OWNERS = 34


def test_existing_rules_learn_their_organisation(server_url: str) -> None:
    with migrated_before(server_url, RULE_OWNERS) as url:
        with psycopg.connect(url) as conn:
            made_in, now_in = (
                conn.execute(
                    "INSERT INTO organizations (name) VALUES (%s) RETURNING id", (n,)
                ).fetchone()[0]  # type: ignore[index]
                for n in ("Made In", "Now In")
            )
            tenant = conn.execute(
                "INSERT INTO tenants (name, org_id) VALUES ('T', %s) RETURNING id", (now_in,)
            ).fetchone()[0]  # type: ignore[index]
            rules = {}
            for who, scope, org in (
                ("audited", "tenant", None),
                ("unaudited", "tenant", None),
                ("org-wide", "org", made_in),
            ):
                rules[who] = conn.execute(
                    "INSERT INTO alert_rules (scope, org_id, tenant_id, kind, created_by)"
                    " VALUES (%s, %s, %s, 'grade_down', %s) RETURNING id",
                    (scope, org, tenant if scope == "tenant" else None, who),
                ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO audit_log (actor, role, action, org_id, tenant_id, target)"
                " VALUES ('audited', 'org', 'alert_rule.create', %s, %s, %s)",
                (made_in, tenant, str(rules["audited"])),
            )
        applied = asyncio.run(migrate(url))
        assert applied[0].version == RULE_OWNERS
        with psycopg.connect(url) as conn:
            owners = dict(conn.execute("SELECT created_by, owner_org FROM alert_rules").fetchall())
    assert owners == {"audited": made_in, "unaudited": now_in, "org-wide": made_in}
