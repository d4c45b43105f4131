"""Versioned schema migrations: `migrations/NNNN_name.sql`, applied in order, each once.

Applying takes a transaction-level advisory lock, so two processes starting at once apply
each migration exactly once; the applied versions are recorded in `aoer_schema_migrations`.
"""

import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from importlib import resources
from typing import LiteralString, TypeVar

import psycopg
from psycopg import sql

from aoer.db import adoption
from aoer.db.pool import Connection, connect
from aoer.errors import MigrationError

logger = logging.getLogger(__name__)

T = TypeVar("T")
CORE_VERSION = 1  # 0001_core.sql: the tables an adopted database's rows are copied into
MIGRATION_LOCK_KEY = 0x4A0E7_0001  # pg_advisory_xact_lock key shared by every migrating process
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: LiteralString  # shipped files, never user input


def available_migrations() -> list[Migration]:
    """The migrations shipped with this version, in order."""
    found = []
    for entry in resources.files("aoer.db.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version: {versions}")
    return found


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS aoer_schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


async def _has_migrations_table(conn: Connection) -> bool:
    cur = await conn.execute("SELECT to_regclass('aoer_schema_migrations') IS NOT NULL AS ok")
    row = await cur.fetchone()
    return bool(row and row["ok"])


async def applied_versions(conn: Connection) -> set[int]:
    """Versions recorded as applied; empty when the database was never migrated."""
    if not await _has_migrations_table(conn):
        return set()
    cur = await conn.execute("SELECT version FROM aoer_schema_migrations")
    return {int(str(r["version"])) for r in await cur.fetchall()}


async def sync_app_privileges(conn: Connection) -> int:
    """Bring the group role `aoer_app`'s grants in line with its rule (0007_app_roles.sql);
    returns how many grants, revokes and policies that took (0 when already in line).
    A database migrated only to before 0007 has no such role yet: 0."""
    return await _count_from(conn, "aoer_sync_app_privileges")


async def confine_other_roles(conn: Connection) -> int:
    """Revoke from roles that are not this schema's (Supabase's anon and authenticated, say)
    what 0030_seed_compatibility.sql's rule does not give them; returns how many privileges
    that took. A database migrated only to before 0030 has no such rule yet: 0."""
    return await _count_from(conn, "aoer_confine_other_roles")


async def _count_from(conn: Connection, function: str) -> int:
    """What the count function `function()` returns; 0 where this database does not have it
    yet (migrated only to before the migration that adds it)."""
    cur = await conn.execute("SELECT to_regprocedure(%s) IS NOT NULL AS ok", (f"{function}()",))
    row = await cur.fetchone()
    if not row or not row["ok"]:
        return 0
    cur = await conn.execute(sql.SQL("SELECT {}() AS n").format(sql.Identifier(function)))
    row = await cur.fetchone()
    return int(str(row["n"])) if row else 0


async def pending_migrations(conn: Connection) -> list[Migration]:
    done = await applied_versions(conn)
    return [m for m in available_migrations() if m.version not in done]


async def migrate(url: str) -> list[Migration]:
    """Apply every pending migration; returns those this call applied.

    A database built by the old Node/Supabase system (its tables, no aoer_schema_migrations)
    is adopted in place in the same transaction (aoer.db.adoption): checked, its tables set
    aside, 0001 applied, its rows copied over, the rest applied. Anything refused changes
    nothing.

    With nothing pending it changes nothing, so the app role (which may not write the schema,
    DDL included) can run it too, as `aoer up` does on start."""
    conn = await connect(url)
    applied: list[Migration] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            old = await adoption.detect(conn)
            if old is not None:
                await adoption.hold(conn, old)
                await adoption.check(conn, old)
                logger.info("adopting the old system's database: %s", ", ".join(old.tables))
                await _translated("setting the old tables aside", adoption.set_aside(conn, old))
            if not await _has_migrations_table(conn):
                await conn.execute(_CREATE_TABLE)
            for migration in await pending_migrations(conn):
                logger.info("applying migration %04d_%s", migration.version, migration.name)
                try:
                    await conn.execute(migration.sql)
                except psycopg.Error as exc:
                    # One transaction for every pending migration (and an adoption).
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed, so nothing"
                        f" was changed: {exc}"
                    ) from exc
                await conn.execute(
                    "INSERT INTO aoer_schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied.append(migration)
                if old is not None and migration.version == CORE_VERSION:
                    # Rows join the tables 0001 made before later migrations run, so those
                    # see (and may transform) the adopted data as they would have grown.
                    await _translated("copying the old rows", adoption.copy_rows(conn))
            if old is not None:
                await _translated("finishing the adoption", adoption.finish(conn))
            if applied:
                # Tables, sequences and functions of the migrations just applied get the app
                # role's grants (0007_app_roles.sql); in this transaction, so all or none.
                try:
                    await sync_app_privileges(conn)
                except psycopg.Error as exc:
                    raise MigrationError(f"granting aoer_app failed: {exc}") from exc
                # Default privileges (Supabase's) gave the new objects to roles that are not
                # ours, and an adoption carried the old grants over: both confined here.
                try:
                    revoked = await confine_other_roles(conn)
                except psycopg.Error as exc:
                    raise MigrationError(f"confining other roles failed: {exc}") from exc
                if revoked:
                    logger.info("revoked %d privileges of roles that are not ours", revoked)
    finally:
        await conn.close()
    return applied


async def _translated(step: str, work: Awaitable[T]) -> T:
    try:
        return await work
    except psycopg.Error as exc:
        raise MigrationError(f"adopting the old system's database failed {step}: {exc}") from exc


async def plan(url: str, retention: adoption.RetentionAges | None = None) -> list[str]:
    """What `migrate` would do, in words, read in a READ ONLY transaction: nothing changes.
    An old system's database that cannot be adopted raises AdoptionRefused, as `migrate`
    would. `retention`: the workers' ages, to say which adopted rows they will delete."""
    conn = await connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET TRANSACTION READ ONLY")
            lines: list[str] = []
            old = await adoption.detect(conn)
            if old is not None:
                await adoption.check(conn, old)
                lines += await adoption.plan(conn, old, retention)
            lines += [
                f"apply migration {m.version:04d}_{m.name}" for m in await pending_migrations(conn)
            ]
            if lines:
                lines.append(
                    "grant the app role aoer_app what the new objects need; leave roles that "
                    "are not this schema's (Supabase's anon, authenticated) reading at most"
                )
    finally:
        await conn.close()
    return lines
