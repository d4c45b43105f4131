"""0029 records which organisation issued each tenant key, for the keys issued before it too
(read from the audit log), so that moving a tenant revokes the old organisation's keys."""

import asyncio
import uuid

import psycopg

from aoer.db.schema import migrate
from tests.migration.before import migrated_before

KEY_ISSUERS = 29


def test_existing_keys_learn_their_issuer_from_the_audit_log(server_url: str) -> None:
    with migrated_before(server_url, KEY_ISSUERS) as url:
        with psycopg.connect(url) as conn:
            org = conn.execute("INSERT INTO organizations (name) VALUES ('A') RETURNING id")
            org_id = org.fetchone()[0]  # type: ignore[index]
            tenant = conn.execute(
                "INSERT INTO tenants (name, org_id) VALUES ('T', %s) RETURNING id", (org_id,)
            ).fetchone()[0]  # type: ignore[index]
            keys = {}
            for who in ("org", "admin", "unaudited"):
                keys[who] = conn.execute(
                    "INSERT INTO api_keys (prefix, hash, scope, tenant_id, created_by)"
                    " VALUES ('aoer_x', %s, 'tenant', %s, %s) RETURNING id",
                    (uuid.uuid4().hex * 2, tenant, who),
                ).fetchone()[0]  # type: ignore[index]
            for who in ("org", "admin"):
                conn.execute(
                    "INSERT INTO audit_log (actor, role, action, org_id, tenant_id, target)"
                    " VALUES (%s, %s, 'key.create', %s, %s, %s)",
                    (who, who, org_id, tenant, str(keys[who])),
                )
        applied = asyncio.run(migrate(url))
        assert applied[0].version == KEY_ISSUERS  # later migrations follow it
        with psycopg.connect(url) as conn:
            issuers = dict(
                conn.execute("SELECT created_by, issued_by_org FROM api_keys").fetchall()
            )
    assert issuers == {"org": org_id, "admin": None, "unaudited": None}
