"""The store maps a query's columns into its dataclasses by name, whatever their order: the
positional path (columns in field order) and the by-name path give the same rows."""

from dataclasses import dataclass

import pytest

from aoer.db.pool import Connection
from aoer.store.statements import dataclass_row


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    name: str
    note: str | None = None


async def fetch(conn: Connection, sql: str) -> list[Job]:
    async with conn.cursor(row_factory=dataclass_row(Job)) as cur:
        await cur.execute(sql.encode())
        return await cur.fetchall()


async def test_columns_in_field_order_fill_the_fields_and_leave_defaults(conn: Connection) -> None:
    assert await fetch(conn, "SELECT 1 AS id, 'a' AS name") == [Job(1, "a")]
    assert await fetch(conn, "SELECT 2 AS id, 'b' AS name, 'n' AS note") == [Job(2, "b", "n")]


async def test_columns_in_another_order_are_mapped_by_name(conn: Connection) -> None:
    rows = await fetch(conn, "SELECT 'a' AS name, 'n' AS note, 1 AS id")
    assert rows == [Job(1, "a", "n")]
    # A prefix of the fields out of order, too.
    assert await fetch(conn, "SELECT 'b' AS name, 2 AS id") == [Job(2, "b")]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 AS id",  # a field without a default is missing
        "SELECT 1 AS id, 'a' AS name, 'n' AS note, 2 AS extra",  # a column no field takes
        "SELECT 1 AS id, 'a' AS title",  # a column under another name
    ],
)
async def test_a_missing_field_or_an_unknown_column_is_an_error(conn: Connection, sql: str) -> None:
    with pytest.raises(TypeError):
        await fetch(conn, sql)
