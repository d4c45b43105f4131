"""The app factory: one FastAPI app over a given pool, with its cache, event hub and metrics.

`create_app(settings, pool)` is all a process needs (`aoer serve`, `aoer up`, tests). Routers
are a list: another feature adds its router with one line in `default_routers` (or passes
`extra_routers`), and builds on the auth dependencies in `aoer.api.auth`.
"""

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from aoer import __version__
from aoer.api import readers
from aoer.api.auth import TokenService
from aoer.api.cache import make_cache
from aoer.api.context import SSE_HEARTBEAT_S, ApiContext
from aoer.api.errors import install_error_handlers
from aoer.api.events import EventHub
from aoer.api.limits import MAX_BODY_BYTES, BodySizeLimit
from aoer.api.metrics import HttpMetricsMiddleware, Metrics
from aoer.api.routes import aoer, model, ops, session, signals, stream, tenants
from aoer.config import Settings
from aoer.dashboard.routes import router as dashboard_router
from aoer.db.pool import Pool
from aoer.errors import AoerError

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Keeps the AOER score (Answer Engine Optimization Rating) of every dealership fresh.

Authenticate with `Authorization: Bearer <JWT>` (`aoer token` mints one; roles `admin`,
`service`, `tenant`) or the session cookie set by `GET /login`. Errors are
`{"error": "<message>", ...}`."""


def default_routers() -> list[APIRouter]:
    """Every router the API serves. The dashboard (issue 4) and the model endpoints (issue 5)
    add theirs here, e.g. `from aoer.dashboard import router as dashboard`."""
    return [
        aoer.router,
        stream.router,
        signals.router,
        tenants.router,
        session.router,
        ops.router,
        model.router,
        dashboard_router,
    ]


def create_app(
    settings: Settings,
    pool: Pool,
    *,
    database_url: str | None = None,
    routers: Sequence[APIRouter] | None = None,
    extra_routers: Sequence[APIRouter] = (),
    heartbeat_s: float = SSE_HEARTBEAT_S,
    cache_namespace: str | None = None,
) -> FastAPI:
    """The API over `pool`. Needs `settings.jwt_secret`; the pool stays the caller's to close.

    `database_url` (default: the pool's) is where the event hub LISTENs; `cache_namespace`
    (default: the database name) keeps deployments sharing one Redis apart.
    """
    if not settings.jwt_secret:
        raise AoerError("AOER_JWT_SECRET is not set: the API never runs without authentication")
    url = database_url or (pool.conninfo if isinstance(pool.conninfo, str) else None)
    if url is None:
        raise AoerError("create_app needs database_url when the pool's conninfo is not a URL")
    metrics = Metrics()
    tokens = TokenService(settings.jwt_secret)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        namespace = cache_namespace or await _database_name(pool)
        cache = make_cache(settings.redis_url, namespace, settings.cache_ttl_s)
        hub = EventHub(url, pool, cache)
        app.state.aoer = ApiContext(settings, pool, tokens, cache, hub, metrics, heartbeat_s)
        await hub.start()
        logger.info(
            "API ready (summary cache: %s, TTL %.0fs)",
            "Redis" if settings.redis_url else "in-process",
            settings.cache_ttl_s,
        )
        try:
            yield
        finally:
            await hub.stop()
            await cache.close()

    app = FastAPI(
        title="AOER Orchestrator API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.tokens = tokens
    app.state.cron_secret = settings.cron_secret
    app.state.metrics = metrics
    install_error_handlers(app, max_body_bytes=MAX_BODY_BYTES)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    for router in [*(default_routers() if routers is None else routers), *extra_routers]:
        app.include_router(router)
    return app


async def _database_name(pool: Pool) -> str:
    async with pool.connection() as conn:
        return await readers.database_name(conn)
