"""What every part of the store shares: one connection, named queries, typed rows.

Each data-owning class (`Jobs`, `Scores`, ...) subclasses `Statements`; its methods run named
queries from `aoer/db/sql/*.sql` through the helpers below, which map rows with psycopg row
factories (`dataclass_row` into the project's dataclasses, `scalar_row` for single values)
and translate driver errors once.
"""

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from psycopg.pq import TransactionStatus
from psycopg.rows import AsyncRowFactory, BaseRowFactory, RowMaker, class_row, scalar_row

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.errors import DatabaseError
from aoer.store.errors import translated
from aoer.store.policy import QueuePolicy

T = TypeVar("T")
Params = Mapping[str, Any] | None


def dataclass_row(cls: type[T]) -> BaseRowFactory[T]:
    """Rows as `cls` instances, built from positional values when the query's columns are the
    dataclass's fields in order (the rest left to their defaults), by name otherwise.

    psycopg's `class_row` builds a keyword dict for every row: for the worker's 2,000 rows a
    batch (a claim and a completion) that was 10 of its ~17 ms of Python. The names are
    compared once per result, so a query whose columns drift from the fields still gets
    them by name, never into the wrong field.
    """
    known = _FACTORIES.get(cls)
    if known is None:
        known = _FACTORIES[cls] = _dataclass_row(cls)
    return known


_FACTORIES: dict[type, BaseRowFactory[Any]] = {}


def _dataclass_row(cls: type[T]) -> BaseRowFactory[T]:
    if not dataclasses.is_dataclass(cls):
        return class_row(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]

    def positional(values: Sequence[Any]) -> T:
        return cls(*values)

    def factory(cursor: Any) -> RowMaker[T]:
        columns = [c.name for c in cursor.description or ()]
        # A prefix of the fields in order goes by position (a missing required field fails
        # the same way either path); anything else by name.
        return positional if columns == names[: len(columns)] else _by_name(cls, columns)

    return factory


def _by_name(cls: Callable[..., T], columns: list[str]) -> RowMaker[T]:
    def make(values: Sequence[Any]) -> T:
        return cls(**dict(zip(columns, values, strict=True)))

    return make


class Statements:
    """Named queries over one connection, under the store's policy.

    `prepare` is psycopg's per-statement choice: None prepares a query on the server once a
    connection has run it a few times (and PostgreSQL may then keep one generic plan for
    it), False plans it again on every execution."""

    prepare: bool | None = None

    def __init__(self, conn: Connection, policy: QueuePolicy) -> None:
        self.conn = conn
        self.policy = policy

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction (a savepoint inside another); driver errors translated."""
        with translated():
            async with self.conn.transaction():
                yield

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this connection (a new one would be a savepoint
        that commits only with it)."""
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    async def limit_transaction(
        self, *, lock_timeout_ms: int, idle_ms: int, statement_timeout_ms: int
    ) -> None:
        """Set this transaction's own lock, idle and statement limits (0 = none)."""
        params = {
            "lock_timeout_ms": lock_timeout_ms,
            "idle_ms": idle_ms,
            "statement_timeout_ms": statement_timeout_ms,
        }
        await self._run("local_timeouts", params)

    async def _rows(self, factory: AsyncRowFactory[T], name: str, params: Params = None) -> list[T]:
        with translated():
            async with self.conn.cursor(row_factory=factory) as cur:
                await cur.execute(query(name), params, prepare=self.prepare)
                return await cur.fetchall()

    async def _all(self, cls: type[T], name: str, params: Params = None) -> list[T]:
        return await self._rows(dataclass_row(cls), name, params)

    async def _one(self, cls: type[T], name: str, params: Params = None) -> T | None:
        rows = await self._rows(dataclass_row(cls), name, params)
        return rows[0] if rows else None

    async def _value(self, name: str, params: Params = None) -> object:
        """The first column of the first row (None when there is no row)."""
        rows = await self._rows(scalar_row, name, params)
        return rows[0] if rows else None

    async def _int(self, name: str, params: Params = None) -> int:
        """A count or other integer the query always returns (0 when it returns no row)."""
        value = await self._value(name, params)
        if value is None:
            return 0
        if not isinstance(value, int):
            raise DatabaseError(f"query {name} returned {value!r}, expected an integer")
        return value

    async def _values(self, name: str, params: Params = None) -> list[object]:
        return await self._rows(scalar_row, name, params)

    async def _run(self, name: str, params: Params = None) -> int:
        """Execute; the number of rows it touched."""
        with translated():
            cur = await self.conn.execute(query(name), params, prepare=self.prepare)
            return cur.rowcount
