"""What every request handler may use: settings, store, tokens, sessions, cache, event hub
and metrics.

The composition root (`aoer.bootstrap`) builds one `ApiContext` per process and hands it to
`create_app`; handlers reach it through the `Context` dependency.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Final, cast
from uuid import UUID

from fastapi import Depends, Request

from aoer import queue
from aoer.api.cache import SummaryCache
from aoer.api.metrics import Metrics
from aoer.api.metrics_snapshot import MetricsSnapshot
from aoer.config import Settings
from aoer.queue import Enqueuer
from aoer.store import Scope, Session, Store
from aoer.types import EnqueuedJob, Priority

if TYPE_CHECKING:  # auth reads the context; the context only names auth's types
    from aoer.api.auth import Principal, TokenService
    from aoer.api.events import EventHub
    from aoer.api.keys import KeyRegistry
    from aoer.api.sessions import SessionRegistry

SSE_HEARTBEAT_S: Final = 15.0
DB_ACQUIRE_TIMEOUT_S: Final = 5.0  # a request waits this long for a pooled connection, then 503


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    tokens: "TokenService"
    sessions: "SessionRegistry"
    keys: "KeyRegistry"
    cache: SummaryCache
    hub: "EventHub"
    metrics: Metrics
    metrics_snapshot: MetricsSnapshot
    enqueuer: Enqueuer
    heartbeat_s: float = SSE_HEARTBEAT_S

    @asynccontextmanager
    async def session(self, principal: "Principal | None" = None) -> AsyncIterator[Session]:
        """A store session that sees what `principal` may see (everything when None: the
        caller checked the role). Tenant and organisation callers get Row Level Security."""
        scope: Scope | None = principal.scope if principal is not None else None
        async with self.store.session(scope, timeout_s=DB_ACQUIRE_TIMEOUT_S) as session:
            yield session

    async def enqueue(
        self, principal: "Principal", tenant_id: UUID, priority: Priority
    ) -> EnqueuedJob:
        """Queue the tenant for `principal` (whose access is already checked). Callers that
        see every tenant share statements with the process's other enqueues (`Enqueuer`);
        a tenant or organisation enqueues in its own scoped session."""
        if principal.scope is None:
            job = await self.enqueuer.enqueue(tenant_id, priority)
            if job is not None:
                return job
            async with self.session(principal) as session:
                await queue.refuse_not_queued(session, tenant_id)
        async with self.session(principal) as session:
            return await queue.enqueue(session, tenant_id, priority)


def api_context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.aoer)


async def get_context(request: Request) -> ApiContext:
    # async on purpose: FastAPI runs plain `def` dependencies in a worker thread
    return api_context(request)


Context = Annotated[ApiContext, Depends(get_context)]
