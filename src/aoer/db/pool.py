"""Connections and pools: every session runs in UTC so `CURRENT_DATE` is the UTC date."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from aoer.errors import DatabaseError

Connection = psycopg.AsyncConnection[dict[str, object]]
Pool = AsyncConnectionPool[Connection]

CONNECT_TIMEOUT_S = 10


def _exact_json(text: str | bytes) -> object:
    """jsonb numbers as Decimal, so a stored 60.00 reads back as 60.00 and never as a float."""
    return json.loads(text, parse_float=Decimal)


async def _configure(conn: Connection) -> None:
    set_json_loads(_exact_json, conn)
    await conn.execute("SET TIME ZONE 'UTC'")


async def connect(url: str, *, autocommit: bool = True) -> Connection:
    """One connection outside any pool (LISTEN, migrations, CLI one-shots)."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=autocommit, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
    await _configure(conn)
    if not autocommit:
        await conn.commit()
    return conn


@asynccontextmanager
async def open_pool(url: str, *, max_size: int = 10, min_size: int = 1) -> AsyncIterator[Pool]:
    """A connection pool, opened and checked, closed on exit."""
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=min(min_size, max_size),
        max_size=max_size,
        open=False,
        configure=_configure,
        # Autocommit: reads leave no transaction open; writes say `conn.transaction()`.
        kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True},
        connection_class=psycopg.AsyncConnection,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 3)
    except Exception as exc:
        await pool.close()
        raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()
