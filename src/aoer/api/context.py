"""What every request handler may use: settings, store, tokens, sessions, cache, event hub
and metrics.

The composition root (`aoer.bootstrap`) builds one `ApiContext` per process and hands it to
`create_app`; handlers reach it through the `Context` dependency.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Final, cast

from fastapi import Depends, Request

from aoer.api.cache import SummaryCache
from aoer.api.metrics import Metrics
from aoer.api.metrics_snapshot import MetricsSnapshot
from aoer.config import Settings
from aoer.store import Scope, Session, Store

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
    heartbeat_s: float = SSE_HEARTBEAT_S

    @asynccontextmanager
    async def session(self, principal: "Principal | None" = None) -> AsyncIterator[Session]:
        """A store session that sees what `principal` may see (everything when None: the
        caller checked the role). Tenant and organisation callers get Row Level Security."""
        scope: Scope | None = principal.scope if principal is not None else None
        async with self.store.session(scope, timeout_s=DB_ACQUIRE_TIMEOUT_S) as session:
            yield session


def api_context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.aoer)


async def get_context(request: Request) -> ApiContext:
    # async on purpose: FastAPI runs plain `def` dependencies in a worker thread
    return api_context(request)


Context = Annotated[ApiContext, Depends(get_context)]
