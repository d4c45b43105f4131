"""The app factory: one FastAPI app over the parts the composition root built.

`create_app(context, routers)` wires a built `ApiContext` (settings, store, tokens,
sessions, cache, event hub, metrics) into FastAPI: error handlers, body limit, metrics
middleware, the routers, and a lifespan that starts and stops the event hub and the session
revocation reloads. It opens nothing itself; `aoer.bootstrap` decides which routers a
process serves (the API's own `api_routers()` and the dashboard's).
"""

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from aoer import __version__
from aoer.api.context import ApiContext
from aoer.api.errors import install_error_handlers
from aoer.api.limits import BodySizeLimit
from aoer.api.metrics import HttpMetricsMiddleware
from aoer.api.routes import (
    alerts,
    aoer,
    audit,
    console,
    fleet,
    keys,
    model,
    observations,
    ops,
    orgs,
    signals,
    stream,
    tenants,
)

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Keeps the AOER score (Answer Engine Optimization Rating) of every dealership fresh.

Authenticate with `Authorization: Bearer <JWT>` (`aoer token` mints one; roles `admin`,
`service`, `org`, `tenant`), `Authorization: Bearer aoer_…` (an API key) or the session
cookie set by `POST /login` (a request that changes state with the cookie must come from the
dashboard's own pages). Errors are
`{"error": "<message>", ...}`."""


def api_routers() -> list[APIRouter]:
    """The JSON API's routers; a new capability adds its router here."""
    return [
        aoer.router,
        stream.router,
        signals.router,
        observations.router,
        tenants.router,
        orgs.router,
        keys.router,
        audit.router,
        ops.router,
        model.router,
        console.router,
        alerts.router,
        fleet.router,
    ]


def create_app(context: ApiContext, routers: Sequence[APIRouter]) -> FastAPI:
    """The API over `context`; the store, cache and hub stay the composition root's to close
    (the lifespan starts and stops the hub's LISTEN and the session revocation reloads)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await context.sessions.start()
        await context.keys.start()
        await context.hub.start()
        logger.info(
            "API ready (summary cache: %s, TTL %.0fs)",
            "Redis" if context.settings.redis_url else "in-process",
            context.settings.cache_ttl_s,
        )
        try:
            yield
        finally:
            await context.metrics_snapshot.close()
            await context.hub.stop()
            await context.keys.stop()
            await context.sessions.stop()

    app = FastAPI(
        title="AOER Orchestrator API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.aoer = context  # what the `Context` dependency hands each request
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(HttpMetricsMiddleware, metrics=context.metrics)
    for router in routers:
        app.include_router(router)
    return app
