"""The API's half of the composition root: tokens, sessions, cache, event hub, metrics, the app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from aoer.api import api_routers, create_app
from aoer.api.auth import TokenService, org_lookup
from aoer.api.cache import make_cache
from aoer.api.context import DB_ACQUIRE_TIMEOUT_S, SSE_HEARTBEAT_S, ApiContext
from aoer.api.events import EventHub
from aoer.api.keys import KeyRegistry
from aoer.api.metrics import Metrics
from aoer.api.metrics_snapshot import MetricsSnapshot
from aoer.api.server import ApiServer
from aoer.api.sessions import SessionRegistry
from aoer.bootstrap import Services
from aoer.dashboard import dashboard_routers, install_page_errors
from aoer.errors import AoerError
from aoer.queue import Enqueuer


@dataclass
class ApiParts:
    app: FastAPI
    context: ApiContext

    def server(self, host: str, port: int, *, reuse_port: bool = False) -> ApiServer:
        return ApiServer(
            self.app,
            host,
            port,
            reuse_port=reuse_port,
            on_stop=self.context.hub.release_subscribers,
        )


@asynccontextmanager
async def build_api(
    services: Services,
    *,
    heartbeat_s: float = SSE_HEARTBEAT_S,
    cache_namespace: str | None = None,
) -> AsyncIterator[ApiParts]:
    """The API over `services`: tokens, cache, event hub, metrics and the app (API and
    dashboard routers). Needs `AOER_JWT_SECRET`; the cache is closed on exit.

    `cache_namespace` (default: the database's name) keeps deployments sharing one Redis
    apart."""
    settings = services.settings
    if not settings.jwt_secret:
        raise AoerError("AOER_JWT_SECRET is not set: the API never runs without authentication")
    lookup = org_lookup(services.store)
    tokens = TokenService(settings.jwt_secret, lookup)
    namespace = cache_namespace or await services.store.database_name()
    cache = make_cache(settings.redis_url, namespace, settings.cache_ttl_s)
    metrics = Metrics()
    context = ApiContext(
        settings=settings,
        store=services.store,
        tokens=tokens,
        sessions=SessionRegistry(services.store, tokens),
        keys=KeyRegistry(services.store, lookup),
        cache=cache,
        hub=EventHub(
            services.store,
            cache,
            max_streams=settings.sse_max_streams,
            max_per_principal=settings.sse_max_per_principal,
        ),
        metrics=metrics,
        metrics_snapshot=MetricsSnapshot(services.store, metrics, settings.metrics_refresh_s),
        # Half the pool at most: the other half stays free for reads.
        enqueuer=Enqueuer(
            lambda: services.store.session(timeout_s=DB_ACQUIRE_TIMEOUT_S),
            max_in_flight=max(1, settings.pool_size // 2),
        ),
        heartbeat_s=heartbeat_s,
    )
    try:
        app = create_app(context, [*api_routers(), *dashboard_routers()])
        install_page_errors(app)
        yield ApiParts(app, context)
    finally:
        await context.enqueuer.close()
        await cache.close()
