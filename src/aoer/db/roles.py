"""Production roles: the login role that `aoer serve` and `aoer worker` connect as.

Migration 0007 creates the NOLOGIN group `aoer_app` holding exactly what the API and workers
use; `aoer migrate --app-role NAME` makes NAME a LOGIN member of it: created when missing, its
attributes corrected, its password (re)set when one is given. NAME is never a superuser and
never an owner: such a role is refused, not demoted. Running it again changes nothing.
"""

import re
from dataclasses import dataclass
from typing import LiteralString

import psycopg
from psycopg import sql

from aoer.db.pool import Connection, connect
from aoer.db.queries import query
from aoer.db.schema import MIGRATION_LOCK_KEY, sync_app_privileges
from aoer.errors import InvalidInput, MigrationError

APP_GROUP = "aoer_app"  # 0007_app_roles.sql
TENANT_ROLE = "aoer_tenant"  # 0002_row_level_security.sql
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# The attributes a login role of the app must have: pg_roles column -> (wanted, ALTER option).
_ATTRIBUTES: dict[str, tuple[bool, LiteralString]] = {
    "login": (True, "LOGIN"),
    "inherit": (True, "INHERIT"),  # the group's privileges apply without SET ROLE
    "createdb": (False, "NOCREATEDB"),
    "createrole": (False, "NOCREATEROLE"),
    "replication": (False, "NOREPLICATION"),
    "bypassrls": (False, "NOBYPASSRLS"),
}
_CREATE_OPTIONS: LiteralString = (
    "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
)


@dataclass(frozen=True)
class AppRole:
    """A login role for `aoer serve` and `aoer worker`; `password` None leaves it as it is."""

    name: str
    password: str | None = None

    def __post_init__(self) -> None:
        if not _ROLE_NAME.match(self.name) or self.name.startswith("pg_"):
            raise InvalidInput(
                f"app role name {self.name!r} must be 1-63 lower-case letters, digits or _, "
                "not starting with a digit or pg_"
            )
        if self.name in (APP_GROUP, TENANT_ROLE):
            raise InvalidInput(f"{self.name} is the schema's own role; name a login role")
        if self.password == "":
            raise InvalidInput("the app role's password is empty")


async def setup_app_role(url: str, role: AppRole) -> list[str]:
    """Create or update `role` as a member of `aoer_app` and sync the group's grants, in one
    transaction; returns what changed (empty: nothing did). Needs the schema migrated."""
    conn = await connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            changes = await _ensure_login_role(conn, role)
            granted = await sync_app_privileges(conn)
            if granted:
                changes.append(f"{granted} grants or policies of {APP_GROUP} brought in line")
    except psycopg.Error as exc:
        raise MigrationError(f"cannot set up the app role {role.name}: {exc}") from exc
    finally:
        await conn.close()
    return changes


async def _ensure_login_role(conn: Connection, role: AppRole) -> list[str]:
    name = sql.Identifier(role.name)
    if not await _migrated(conn):
        raise MigrationError("the database has no aoer_app grants yet: run `aoer migrate` first")
    found = await _attributes(conn, role.name)
    changes: list[str] = []
    if found is None:
        try:
            async with conn.transaction():  # a savepoint: another database may create it too
                await conn.execute(sql.SQL("CREATE ROLE {} " + _CREATE_OPTIONS).format(name))
            changes.append("created (LOGIN, not superuser, no CREATEDB/CREATEROLE/BYPASSRLS)")
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass
        found = await _attributes(conn, role.name)
        assert found is not None
    if found["superuser"]:
        raise InvalidInput(
            f"role {role.name} is a superuser; the app role must not be: name another role"
        )
    if found["owner_rights"]:
        raise InvalidInput(
            f"role {role.name} owns (or has the rights of the owner of) this database or its "
            "tables; the app role must not: name another role"
        )
    fixes = [option for column, (wanted, option) in _ATTRIBUTES.items() if found[column] != wanted]
    if fixes:
        await conn.execute(sql.SQL("ALTER ROLE {} " + " ".join(fixes)).format(name))
        changes.append("set " + " ".join(fixes))
    if role.password is not None:
        await _set_password(conn, role.name, role.password)
        changes.append("password set")
    if not found["member"]:
        await conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_GROUP), name))
        changes.append(f"made a member of {APP_GROUP}")
    return changes


async def _attributes(conn: Connection, name: str) -> dict[str, object] | None:
    cur = await conn.execute(query("login_role"), {"name": name, "group": APP_GROUP})
    return await cur.fetchone()


async def _migrated(conn: Connection) -> bool:
    """Migrated to 0007 at least: the group role exists and its grants are kept here."""
    cur = await conn.execute(
        "SELECT to_regprocedure('aoer_sync_app_privileges()') IS NOT NULL AS ok"
    )
    row = await cur.fetchone()
    return bool(row and row["ok"])


async def _set_password(conn: Connection, name: str, password: str) -> None:
    """Hashed here (SCRAM, as the server would), so the plain text never reaches the server's
    statement log."""
    cur = await conn.execute(query("password_encryption"))
    row = await cur.fetchone()
    algorithm = str(row["algorithm"]) if row else "scram-sha-256"
    hashed = conn.pgconn.encrypt_password(password.encode(), name.encode(), algorithm.encode())
    await conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(hashed.decode())
        )
    )
