"""The API on a real PostgreSQL (and the real Redis): app, clients, tokens, a live server.

In-process tests talk to the ASGI app through httpx; SSE and property tests need a real
socket, so `live_api` serves the same app with uvicorn in this event loop. Under CI=true a
missing Redis fails the Redis tests instead of skipping them.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import redis

from aoer import queue
from aoer.api.auth import TokenService
from aoer.api.context import ApiContext
from aoer.api.server import ApiServer
from aoer.bootstrap import ProcessKind, open_services
from aoer.bootstrap.api import ApiParts, build_api
from aoer.config import Settings
from aoer.db.pool import Connection, Pool
from tests.conftest import IN_CI, session_of

JWT_SECRET = "api-test-secret-0123456789abcdef-0123456789"
CRON_SECRET = "cron-test-secret-0123456789abcdef"
REDIS_URL = "redis://127.0.0.1:6379/0"
WORKER = "api-test-worker"


def api_settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "AOER_JWT_SECRET": JWT_SECRET,
        "CRON_SECRET": CRON_SECRET,
        "AOER_HOME": str(home),
        "AOER_RUN_CRON": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Api:
    """One running app and an httpx client bound to it (through ASGI, or a real socket)."""

    parts: ApiParts
    client: httpx.AsyncClient
    base_url: str = "http://test"
    server: ApiServer | None = None  # when served on a socket
    tokens: TokenService = field(default_factory=lambda: TokenService(JWT_SECRET))

    @property
    def app(self) -> Any:
        return self.parts.app

    @property
    def ctx(self) -> ApiContext:
        return self.parts.context

    def bearer(self, role: str = "admin", tenant: UUID | None = None, **kw: Any) -> dict[str, str]:
        token = self.tokens.mint("tenant" if tenant else role, tenant_id=tenant, **kw)
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.bearer("admin")


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(pool: Pool, db_url: str, tmp_path: Path) -> AsyncIterator[ApiFactory]:
    """Build apps (settings overrides as keyword arguments); all are shut down afterwards.

    `live=True` serves the app with uvicorn on a free port in this event loop (SSE needs a
    real socket); otherwise the client calls the ASGI app directly.
    """
    stack = contextlib.AsyncExitStack()

    async def make(*, live: bool = False, namespace: str | None = None, **overrides: object) -> Api:
        settings = api_settings(tmp_path / "home", **overrides)
        # The API's own pool, with the API's server-side limits, as `aoer serve` opens it.
        services = await stack.enter_async_context(
            open_services(settings, kind=ProcessKind.API, database_url=db_url)
        )
        parts = await stack.enter_async_context(
            build_api(
                services,
                heartbeat_s=0.2,
                cache_namespace=namespace or f"test-{uuid4().hex}",
            )
        )
        app = parts.app
        if live:
            server = parts.server("127.0.0.1", 0)
            port = await server.start()

            async def shutdown() -> None:
                server.stop()
                await asyncio.wait_for(server.wait(), 10)

            stack.push_async_callback(shutdown)
            base_url = f"http://127.0.0.1:{port}"
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, timeout=10)
            )
            return Api(parts, client, base_url, server)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")
        )
        return Api(parts, client)

    async with stack:
        yield make


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    """The app with the in-process cache."""
    return await make_api()


@pytest.fixture
def redis_url() -> str:
    """The real Redis; skipped when it is missing, except under CI=true where that fails."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required under CI=true and {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


async def recompute_through_worker(conn: Connection, tenant_ids: list[UUID]) -> None:
    """What a worker does: enqueue, claim, process the batch (commits and NOTIFYs)."""
    await queue.enqueue_many(session_of(conn), tenant_ids, "high")
    jobs = await session_of(conn, lease_s=30).jobs.claim(WORKER, len(tenant_ids))
    await queue.process_batch(session_of(conn), WORKER, jobs)


async def count(conn: Connection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # type: ignore[arg-type]
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])  # type: ignore[call-overload]


def days(n: int) -> timedelta:
    return timedelta(days=n)
