"""A database migrated up to, not including, one migration: as an installed system is when
that migration meets its data."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from aoer.db.schema import available_migrations
from tests.conftest import _admin, with_database


@contextmanager
def migrated_before(server_url: str, version: int) -> Iterator[str]:
    """A fresh database with every migration before `version` applied; its URL. Dropped
    afterwards."""
    name = f"aoer_m_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f"CREATE DATABASE {name}")
    url = with_database(server_url, name)
    try:
        with psycopg.connect(url) as conn:
            conn.execute(
                "CREATE TABLE aoer_schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for m in available_migrations():
                if m.version < version:
                    conn.execute(m.sql)
                    conn.execute(
                        "INSERT INTO aoer_schema_migrations (version, name) VALUES (%s, %s)",
                        (m.version, m.name),
                    )
            conn.execute("SELECT aoer_sync_app_privileges()")
        yield url
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
