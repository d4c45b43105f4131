"""The store: the only code that executes SQL. One `Store` per process, over one pool.

`store.session()` lends a pooled connection as a `Session` whose parts own the tables:
`jobs`, `scores`, `tenants`, `signals`, `ticks`, `models`, `fleet`, `sessions`,
`organizations`, `audit`, `observations`, `keys`, `console`, `partitions`, `alerts`. A
session with a `Scope` runs inside one transaction as the non-owner role `aoer_tenant` with
the caller's claims in `request.jwt.claims`, so Row Level Security limits every statement in
it, even one that forgets its `WHERE tenant_id`.
"""

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property

from psycopg import sql

from aoer.db.pool import Connection, Pool, connect
from aoer.db.schema import pending_migrations
from aoer.store.alerts import Alerts
from aoer.store.audit import Audit
from aoer.store.console import Console
from aoer.store.errors import translated
from aoer.store.fleet import Fleet
from aoer.store.jobs import Jobs
from aoer.store.keys import ApiKeys
from aoer.store.models import Models
from aoer.store.observations import Observations
from aoer.store.organizations import Organizations
from aoer.store.partitions import Partitions
from aoer.store.policy import QueuePolicy
from aoer.store.scores import Scores
from aoer.store.sessions import Sessions
from aoer.store.signals import Signals
from aoer.store.statements import Statements
from aoer.store.tenants import Tenants
from aoer.store.ticks import Ticks
from aoer.store.wakeup import Waker


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows a session may see: the JWT claims PostgreSQL's policies read."""

    claims: Mapping[str, str] = field(default_factory=dict)

    def claims_json(self) -> str:
        return json.dumps(dict(self.claims))


@dataclass(frozen=True, slots=True)
class Notification:
    channel: str
    payload: str


class Session(Statements):
    """One connection's worth of work; its parts share the connection and transactions."""

    # The store's coalesced queue wake-ups (store/wakeup.py); None: NOTIFY in each enqueue.
    waker: Waker | None = None

    @cached_property
    def jobs(self) -> Jobs:
        return Jobs(self.conn, self.policy, self.waker)

    @cached_property
    def scores(self) -> Scores:
        return Scores(self.conn, self.policy)

    @cached_property
    def tenants(self) -> Tenants:
        return Tenants(self.conn, self.policy)

    @cached_property
    def signals(self) -> Signals:
        return Signals(self.conn, self.policy)

    @cached_property
    def ticks(self) -> Ticks:
        return Ticks(self.conn, self.policy)

    @cached_property
    def models(self) -> Models:
        return Models(self.conn, self.policy)

    @cached_property
    def fleet(self) -> Fleet:
        return Fleet(self.conn, self.policy)

    @cached_property
    def sessions(self) -> Sessions:
        return Sessions(self.conn, self.policy)

    @cached_property
    def organizations(self) -> Organizations:
        return Organizations(self.conn, self.policy)

    @cached_property
    def audit(self) -> Audit:
        return Audit(self.conn, self.policy)

    @cached_property
    def observations(self) -> Observations:
        return Observations(self.conn, self.policy)

    @cached_property
    def keys(self) -> ApiKeys:
        return ApiKeys(self.conn, self.policy)

    @cached_property
    def console(self) -> Console:
        return Console(self.conn, self.policy)

    @cached_property
    def partitions(self) -> Partitions:
        return Partitions(self.conn, self.policy)

    @cached_property
    def alerts(self) -> Alerts:
        return Alerts(self.conn, self.policy)

    async def enter_scope(self, scope: Scope) -> None:
        await self._run("enter_tenant_scope", {"claims": scope.claims_json()})


class Store:
    def __init__(self, pool: Pool, database_url: str, policy: QueuePolicy | None = None) -> None:
        self.pool = pool
        self.database_url = database_url
        self.policy = policy or QueuePolicy()
        self.waker: Waker | None = Waker(pool)

    @asynccontextmanager
    async def session(
        self, scope: Scope | None = None, *, timeout_s: float | None = None
    ) -> AsyncIterator[Session]:
        """A pooled connection; with a scope, one transaction limited by Row Level Security.

        `timeout_s` bounds the wait for a free connection (then `DatabaseUnavailable`)."""
        with translated():
            async with self.pool.connection(timeout=timeout_s) as conn:
                session = Session(conn, self.policy)
                session.waker = self.waker
                if scope is None:
                    yield session
                    return
                async with conn.transaction():
                    await session.enter_scope(scope)
                    yield session

    @asynccontextmanager
    async def listen(self, *channels: str) -> AsyncIterator[AsyncIterator[Notification]]:
        """A connection of its own LISTENing on `channels`; iterate for notifications.

        The iterator raises `DatabaseUnavailable` when the connection is lost."""
        conn = await connect(self.database_url, autocommit=True)
        try:
            with translated():
                for channel in channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            yield _notifications(conn)
        finally:
            with translated():
                await conn.close()

    async def flush(self) -> None:
        """Send the wake-ups asked for and not sent yet (before the pool closes)."""
        if self.waker is not None:
            await self.waker.flush()

    async def ping(self, timeout_s: float | None = None) -> None:
        async with self.session(timeout_s=timeout_s) as session:
            await session._run("ping")

    async def pending_migrations(self, timeout_s: float | None = None) -> list[str]:
        """Migrations not applied yet (`NNNN_name`); raises when the database is down."""
        async with self.session(timeout_s=timeout_s) as session:
            with translated():
                pending = await pending_migrations(session.conn)
        return [f"{m.version:04d}_{m.name}" for m in pending]

    async def database_name(self) -> str:
        async with self.session() as session:
            return str(await session._value("database_name"))


async def _notifications(conn: Connection) -> AsyncIterator[Notification]:
    with translated():
        async for notify in conn.notifies():
            yield Notification(notify.channel, notify.payload)


__all__ = ["Notification", "QueuePolicy", "Scope", "Session", "Store"]
