"""Production roles (README "Production roles"): `aoer migrate --app-role NAME` makes a login
role that is neither superuser nor owner, holds only what the API and workers use, sees every
row while `aoer_tenant` stays limited, covers tables added later, and changes nothing when run
again."""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from aoer.db.roles import APP_GROUP, AppRole, setup_app_role
from aoer.errors import InvalidInput, MigrationError
from tests.acceptance.conftest import AoerCli
from tests.conftest import _admin, with_database, with_user


@pytest.fixture
def app_role(server_url: str) -> Iterator[str]:
    """A fresh login role name (roles are cluster-global), dropped afterwards."""
    name = f"aoer_t_app_{uuid.uuid4().hex[:8]}"
    yield name
    _drop_role(server_url, name)


def _drop_role(server_url: str, name: str) -> None:
    """Drop the role once its sessions have ended: a closed connection's backend drops its
    temporary tables after the client has gone, and until then the role still owns them."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        for _ in range(100):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (name,)
            ).fetchone()
            if row == (0,):
                break
            time.sleep(0.05)
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def app_db(owner_db_url: str, app_role: str) -> str:
    """The test's database, the app role set up on it; returns the URL as that role."""
    assert asyncio.run(setup_app_role(owner_db_url, AppRole(app_role)))
    return with_user(owner_db_url, app_role)


def _one(url: str, statement: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def _layout(url: str, role: str) -> dict[str, Any]:
    """What the role layout consists of: the login role's attributes and memberships, and the
    group's grants and policies in this database."""
    return {
        "role": _one(
            url,
            "SELECT row_to_json(r)::text FROM (SELECT rolsuper, rolinherit, rolcreaterole,"
            " rolcreatedb, rolcanlogin, rolreplication, rolbypassrls FROM pg_roles"
            " WHERE rolname = %s) r",
            (role,),
        ),
        "member_of": _one(
            url,
            "SELECT array_agg(m.roleid::regrole::text ORDER BY 1) FROM pg_auth_members m"
            " WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            (role,),
        ),
        "grants": _one(
            url,
            "SELECT array_agg(c.relname || ':' || c.relacl::text ORDER BY c.relname)"
            " FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace",
        ),
        "functions": _one(
            url,
            "SELECT array_agg(p.oid::regprocedure::text || ':' || coalesce(p.proacl::text, '')"
            " ORDER BY 1) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace",
        ),
        "policies": _one(
            url,
            "SELECT array_agg(polrelid::regclass::text || ':' || polname || ':'"
            " || polroles::regrole[]::text ORDER BY 1) FROM pg_policy",
        ),
    }


def test_the_app_role_is_a_plain_login_member_of_the_group(app_db: str, app_role: str) -> None:
    attributes = json.loads(_layout(app_db, app_role)["role"])
    assert attributes == {
        "rolsuper": False,
        "rolinherit": True,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolcanlogin": True,
        "rolreplication": False,
        "rolbypassrls": False,
    }
    assert _layout(app_db, app_role)["member_of"] == [APP_GROUP]
    assert _one(app_db, "SELECT current_user") == app_role
    # Owns nothing here and has none of the owner's rights.
    assert not _one(
        app_db,
        "SELECT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
        " AND pg_has_role(current_user, c.relowner, 'USAGE'))",
    )
    assert not _one(
        app_db,
        "SELECT pg_has_role(current_user, d.datdba, 'USAGE') FROM pg_database d"
        " WHERE d.datname = current_database()",
    )


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE aoer_intruder (id int)",
        "DROP TABLE aoer_cron_ticks",
        "ALTER TABLE tenants ADD COLUMN intruder text",
        "ALTER TABLE aoer_queue DISABLE ROW LEVEL SECURITY",
        "CREATE POLICY intruder ON tenants USING (true)",
        "CREATE INDEX intruder ON tenants (name)",
        "CREATE FUNCTION aoer_intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "TRUNCATE aoer_queue",
        "INSERT INTO aoer_schema_migrations (version, name) VALUES (9999, 'intruder')",
        "DELETE FROM aoer_schema_migrations",
        "UPDATE aoer_schema_migrations SET name = 'x'",
        "UPDATE model_audit SET reason = 'rewritten'",
        "DELETE FROM model_audit",
        "UPDATE audit_log SET actor = 'rewritten'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DELETE FROM model_weights",
        "SELECT aoer_sync_app_privileges()",
        "GRANT aoer_app TO aoer_tenant",
        "SET ROLE postgres",
    ],
)
def test_the_app_role_may_not_change_the_schema_or_the_audit_trail(
    app_db: str, statement: str
) -> None:
    with (
        psycopg.connect(app_db, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)  # type: ignore[arg-type]


@pytest.mark.parametrize("role", [None, "aoer_tenant"])
@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'rewritten'", "DELETE FROM audit_log"]
)
def test_the_audit_log_is_append_only_for_the_app_roles_by_privilege(
    app_db: str, role: str | None, statement: str
) -> None:
    """Refused by the grants themselves (the owner's trigger is a second wall)."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_log (actor, role, action) VALUES ('t', 'admin', 'test.append')"
        )
        with conn.transaction():
            if role:
                conn.execute("SET LOCAL ROLE aoer_tenant")
            with pytest.raises(
                psycopg.errors.InsufficientPrivilege, match="permission denied for table audit_log"
            ):
                conn.execute(statement)  # type: ignore[arg-type]
        row = conn.execute("SELECT count(*) FROM audit_log WHERE actor = 't'").fetchone()
        assert row is not None
        assert row[0] == 1


def test_the_app_role_reads_and_writes_what_the_service_uses(app_db: str) -> None:
    with psycopg.connect(app_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM aoer_schema_migrations").fetchone() != (0,)
        tenant = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()
        assert tenant is not None
        conn.execute("INSERT INTO aoer_queue (tenant_id) VALUES (%s)", tenant)
        conn.execute("UPDATE aoer_queue SET priority = 'high' WHERE tenant_id = %s", tenant)
        conn.execute("SELECT * FROM aoer_store_scores(ARRAY[%s]::uuid[])", tenant)
        conn.execute("DELETE FROM aoer_queue WHERE tenant_id = %s", tenant)
        conn.execute("CREATE TEMPORARY TABLE aoer_stage (line int)")  # the signals COPY stage


def test_the_app_role_sees_every_tenant_and_aoer_tenant_only_the_claimed_one(
    app_db: str, owner_db_url: str
) -> None:
    with psycopg.connect(owner_db_url, autocommit=True) as owner:
        ids = [
            owner.execute("INSERT INTO tenants (name) VALUES (%s) RETURNING id", (n,)).fetchone()
            for n in ("A Motors", "B Motors")
        ]
    assert _one(app_db, "SELECT count(*) FROM tenants") == 2
    with psycopg.connect(owner_db_url, autocommit=True) as owner:
        owner.execute("INSERT INTO aoer_queue (tenant_id) SELECT id FROM tenants")
    with psycopg.connect(app_db) as conn:  # one transaction, as `Store.session(scope)` runs
        conn.execute(
            "SELECT set_config('role', 'aoer_tenant', true),"
            " set_config('request.jwt.claims', %s, true)",
            (json.dumps({"tenant_id": str(ids[0][0])}),),  # type: ignore[index]
        )
        assert conn.execute("SELECT current_user").fetchone() == ("aoer_tenant",)
        assert conn.execute("SELECT id FROM tenants").fetchall() == [ids[0]]
        # Only an organisation's claims may delete queue rows (cancel, DESIGN §15); a
        # tenant's delete removes nothing, its own rows included.
        assert conn.execute("DELETE FROM aoer_queue").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM aoer_summary")
    assert _one(app_db, "SELECT count(*) FROM aoer_queue") == 2


def test_migrate_app_role_twice_is_a_no_op(aoer: AoerCli, owner_db_url: str, app_role: str) -> None:
    first = aoer("migrate", "--app-role", app_role, DATABASE_URL=owner_db_url)
    assert first.returncode == 0, first.stderr
    assert f"app role {app_role}: created" in first.stdout
    before = _layout(owner_db_url, app_role)
    second = aoer("migrate", "--app-role", app_role, DATABASE_URL=owner_db_url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["schema is current", f"app role {app_role}: up to date"]
    assert _layout(owner_db_url, app_role) == before


def test_migrate_app_role_sets_the_password_from_the_environment(
    aoer: AoerCli, owner_db_url: str, app_role: str, server_url: str
) -> None:
    done = aoer(
        "migrate",
        "--app-role",
        app_role,
        "--app-password-env",
        "APP_PW",
        DATABASE_URL=owner_db_url,
        APP_PW="s3cret-for-the-app",
    )
    assert done.returncode == 0, done.stderr
    assert "password set" in done.stdout
    # Only a superuser reads pg_authid: the stored password is a SCRAM hash, never the text.
    stored = _one(server_url, "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (app_role,))
    assert stored.startswith("SCRAM-SHA-256$")
    assert "s3cret" not in stored
    missing = aoer(
        "migrate", "--app-role", app_role, "--app-password-env", "NO_SUCH_VAR",
        DATABASE_URL=owner_db_url,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "NO_SUCH_VAR is not set" in missing.stderr


@pytest.fixture
def superuser(server_url: str) -> Iterator[str]:
    name = f"aoer_t_su_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f"CREATE ROLE {name} SUPERUSER LOGIN")
    yield name
    _admin(server_url, f"DROP ROLE IF EXISTS {name}")


def test_a_superuser_is_refused_as_app_role(
    aoer: AoerCli, owner_db_url: str, superuser: str
) -> None:
    before = _layout(owner_db_url, superuser)
    done = aoer("migrate", "--app-role", superuser, DATABASE_URL=owner_db_url)
    assert done.returncode == 1
    assert f"role {superuser} is a superuser" in done.stderr
    assert _layout(owner_db_url, superuser) == before


@pytest.mark.parametrize("name", ["aoer_app", "aoer_tenant", "Bad-Name", "pg_x"])
def test_the_schema_roles_and_bad_names_are_refused_as_app_role(
    aoer: AoerCli, owner_db_url: str, name: str
) -> None:
    before = _layout(owner_db_url, name)
    done = aoer("migrate", "--app-role", name, DATABASE_URL=owner_db_url)
    assert done.returncode == 1
    assert name in done.stderr
    assert _layout(owner_db_url, name) == before


def test_an_owner_is_refused_as_app_role(owner_db_url: str, app_role: str) -> None:
    _admin(owner_db_url, f"CREATE ROLE {app_role} LOGIN")
    _admin(owner_db_url, f"ALTER TABLE aoer_cron_ticks OWNER TO {app_role}")
    try:
        with pytest.raises(InvalidInput, match="owns"):
            asyncio.run(setup_app_role(owner_db_url, AppRole(app_role)))
        assert not _one(owner_db_url, "SELECT pg_has_role(%s, 'aoer_app', 'MEMBER')", (app_role,))
    finally:  # so the role can be dropped
        _admin(owner_db_url, "ALTER TABLE aoer_cron_ticks OWNER TO CURRENT_USER")


def test_a_later_table_is_granted_and_policed_on_the_next_migrate(
    aoer: AoerCli, app_db: str, owner_db_url: str, app_role: str
) -> None:
    # What a later migration (0006's aoer_sessions, say) does: a table with RLS on.
    _admin(
        owner_db_url,
        "CREATE TABLE aoer_later (id serial PRIMARY KEY, tenant_id uuid);"
        " ALTER TABLE aoer_later ENABLE ROW LEVEL SECURITY;"
        " CREATE POLICY aoer_later_own_rows ON aoer_later"
        " USING (tenant_id = aoer_claimed_tenant_id());"
        " INSERT INTO aoer_later (tenant_id) VALUES (gen_random_uuid()), (gen_random_uuid())",
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _one(app_db, "SELECT count(*) FROM aoer_later")
    done = aoer("migrate", "--app-role", app_role, DATABASE_URL=owner_db_url)
    assert done.returncode == 0, done.stderr
    assert "grants or policies of aoer_app brought in line" in done.stdout
    assert _one(app_db, "SELECT count(*) FROM aoer_later") == 2  # every row, through RLS
    assert _one(app_db, "INSERT INTO aoer_later DEFAULT VALUES RETURNING id") == 3  # nextval
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _one(app_db, "SELECT setval('aoer_later_id_seq', 1)")


def test_narrowing_the_rule_revokes_what_it_no_longer_allows(
    app_db: str, owner_db_url: str, app_role: str
) -> None:
    _admin(
        owner_db_url,
        'CREATE OR REPLACE FUNCTION aoer_app_privileges(relation name, kind "char")'
        " RETURNS text[] LANGUAGE sql IMMUTABLE AS $$"
        " SELECT CASE WHEN relation = 'aoer_cron_ticks' THEN ARRAY['INSERT', 'SELECT']"
        " WHEN kind IN ('v', 'm') THEN ARRAY['SELECT'] WHEN kind = 'S' THEN ARRAY['USAGE']"
        " WHEN relation = 'aoer_schema_migrations' THEN ARRAY['SELECT']"
        " WHEN relation IN ('model_audit', 'audit_log') THEN ARRAY['INSERT', 'SELECT']"
        " WHEN relation = 'model_weights' THEN ARRAY['INSERT', 'SELECT', 'UPDATE']"
        " ELSE ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE'] END $$",
    )
    assert asyncio.run(setup_app_role(owner_db_url, AppRole(app_role))) == [
        "2 grants or policies of aoer_app brought in line"
    ]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _one(app_db, "DELETE FROM aoer_cron_ticks")


@pytest.fixture
def unprivileged_owner(server_url: str) -> Iterator[tuple[str, str]]:
    """A database owned by a role without CREATEROLE; yields (its URL as that owner, its
    login app role), both roles pre-created as a DBA would."""
    suffix = uuid.uuid4().hex[:8]
    owner, app, database = f"aoer_t_owner_{suffix}", f"aoer_t_app_{suffix}", f"aoer_o_{suffix}"
    _admin(server_url, f"CREATE ROLE {owner} LOGIN NOCREATEROLE NOSUPERUSER")
    _admin(server_url, f"CREATE DATABASE {database} OWNER {owner}")
    try:
        yield with_user(with_database(server_url, database), owner), app
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        _admin(server_url, f"DROP ROLE IF EXISTS {app}")
        _admin(server_url, f"DROP ROLE IF EXISTS {owner}")


def test_migrate_runs_without_createrole_when_the_roles_are_pre_created(
    aoer: AoerCli, server_url: str, unprivileged_owner: tuple[str, str]
) -> None:
    url, app = unprivileged_owner
    bare = aoer("migrate", "--app-role", app, DATABASE_URL=url)
    assert bare.returncode == 1  # no CREATEROLE, roles not granted: refused, nothing applied
    assert "aoer_tenant" in bare.stderr
    assert _one(url, "SELECT to_regclass('aoer_schema_migrations')") is None
    # What README "Production roles" tells a DBA to run once (the group roles may exist
    # already: they are cluster-wide).
    for group, options in (("aoer_tenant", "NOLOGIN NOINHERIT"), ("aoer_app", "NOLOGIN")):
        _admin(
            server_url,
            f"DO $$ BEGIN IF to_regrole('{group}') IS NULL THEN"
            f" CREATE ROLE {group} {options}; END IF; END $$",
        )
    owner = url.split("//")[1].split("@")[0]
    for statement in (
        sql.SQL("GRANT aoer_tenant TO aoer_app"),
        sql.SQL("GRANT aoer_tenant TO {}").format(sql.Identifier(owner)),
        sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(app)),
        sql.SQL("GRANT aoer_app TO {}").format(sql.Identifier(app)),
    ):
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(statement)
    done = aoer("migrate", "--app-role", app, DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert f"app role {app}: up to date" in done.stdout
    as_app = with_user(url, app)
    assert _one(as_app, "SELECT count(*) FROM tenants") == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _one(as_app, "DROP TABLE tenants")


def test_setting_up_the_app_role_before_migrating_says_to_migrate(
    server_url: str, app_role: str
) -> None:
    name = f"aoer_m_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f"CREATE DATABASE {name}")
    try:
        with pytest.raises(MigrationError, match="aoer migrate"):
            asyncio.run(setup_app_role(with_database(server_url, name), AppRole(app_role)))
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
