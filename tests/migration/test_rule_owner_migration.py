"""0034 records the organisation that made each alert rule, for the rules made before it too
(an organisation's own; a tenant's from its create audit row when an organisation made it),
and deletes the rules a tenant moved before it kept from its old organisation."""

import asyncio

import psycopg

from aoer.db.schema import migrate
from tests.migration.before import migrated_before

RULE_OWNERS = 34


def test_existing_rules_learn_who_made_them_and_strays_leave(server_url: str) -> None:
    with migrated_before(server_url, RULE_OWNERS) as url:
        with psycopg.connect(url) as conn:

            def one(sql: str, *params: object) -> object:
                return conn.execute(sql, params).fetchone()[0]  # type: ignore[index]

            group, other = (
                one("INSERT INTO organizations (name) VALUES (%s) RETURNING id", name)
                for name in ("Group", "Other")
            )
            stays = one("INSERT INTO tenants (name, org_id) VALUES ('S', %s) RETURNING id", group)
            moved = one("INSERT INTO tenants (name, org_id) VALUES ('M', %s) RETURNING id", other)
            rules = {}
            for who, scope, tenant, role in (
                ("org-made", "tenant", stays, "org"),
                ("admin-made", "tenant", stays, "admin"),
                ("unaudited", "tenant", stays, None),
                ("org-wide", "org", None, None),
                ("left-behind", "tenant", moved, "org"),  # made in Group, tenant now in Other
            ):
                rules[who] = one(
                    "INSERT INTO alert_rules (scope, org_id, tenant_id, kind, created_by)"
                    " VALUES (%s, %s, %s, 'grade_down', %s) RETURNING id",
                    scope, group if scope == "org" else None, tenant, who,
                )  # fmt: skip
                if role is not None:
                    conn.execute(
                        "INSERT INTO audit_log (actor, role, action, org_id, tenant_id, target)"
                        " VALUES (%s, %s, 'alert_rule.create', %s, %s, %s)",
                        (who, role, group, tenant, str(rules[who])),
                    )
        applied = asyncio.run(migrate(url))
        assert applied[0].version == RULE_OWNERS
        with psycopg.connect(url) as conn:
            owners = dict(conn.execute("SELECT created_by, owner_org FROM alert_rules").fetchall())
            trail = conn.execute(
                "SELECT actor, org_id, tenant_id, target FROM audit_log"
                " WHERE action = 'alert_rule.delete'"
            ).fetchall()
    assert owners == {"org-made": group, "admin-made": None, "unaudited": None, "org-wide": group}
    assert trail == [("migration:0034", group, moved, str(rules["left-behind"]))]
