"""What every request handler may use: settings, pool, tokens, cache, event hub and metrics."""

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request

from aoer.api.auth import TokenService
from aoer.api.cache import SummaryCache
from aoer.api.events import EventHub
from aoer.api.metrics import Metrics
from aoer.config import Settings
from aoer.db.pool import Pool

SSE_HEARTBEAT_S = 15.0


@dataclass
class ApiContext:
    settings: Settings
    pool: Pool
    tokens: TokenService
    cache: SummaryCache
    hub: EventHub
    metrics: Metrics
    heartbeat_s: float = SSE_HEARTBEAT_S


def api_context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.aoer)


async def get_context(request: Request) -> ApiContext:
    # async on purpose: FastAPI runs plain `def` dependencies in a worker thread
    return api_context(request)


Context = Annotated[ApiContext, Depends(get_context)]
