"""The summary cache, in-process and on the real Redis: never stale after a recompute, shared
by replicas, bounded by its TTL, and a Redis outage is a warning, never an error."""

import asyncio
import json
import logging
import time
from uuid import UUID, uuid4

import pytest
import redis.asyncio as aioredis

from aoer.api.cache import CacheEntry, RedisBackend, SummaryCache, TieredBackend
from aoer.api.events import Subscription
from aoer.db.pool import Connection
from tests.api.conftest import Api, ApiFactory, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant

LOW = [{"days_ago": d, "aeo": "40", "geo": "40", "ugc": "40"} for d in range(6)]
HIGH = [{"days_ago": d, "aeo": "90", "geo": "90", "ugc": "90"} for d in range(6, 12)]
EVENT_TIMEOUT_S = 5.0


@pytest.fixture(params=["memory", "redis"])
async def cached_api(request: pytest.FixtureRequest, make_api: ApiFactory) -> Api:
    if request.param == "redis":
        return await make_api(REDIS_URL=request.getfixturevalue("redis_url"))
    return await make_api()


async def score(api: Api, tenant: UUID) -> float:
    response = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert response.status_code == 200, response.text
    return float(response.json()["aoerScore"])


async def next_summary(subscription: Subscription) -> bytes:
    while True:
        event = await asyncio.wait_for(subscription.inbox.get(), EVENT_TIMEOUT_S)
        assert event is not None
        if event.name == "summary":
            return event.data


async def recompute_and_wait(api: Api, conn: Connection, tenant: UUID) -> None:
    """Recompute as a worker does, and wait until this API process has heard of it."""
    watcher = api.ctx.hub.subscribe(tenant)
    try:
        await recompute_through_worker(conn, [tenant])
        await next_summary(watcher)  # the hub evicts before it tells anyone
    finally:
        watcher.close()


async def stored_score(conn: Connection, tenant: UUID) -> float:
    cur = await conn.execute("SELECT aoer_score FROM aoer_summary WHERE tenant_id = %s", (tenant,))
    row = await cur.fetchone()
    assert row is not None
    return float(row["aoer_score"])  # type: ignore[arg-type]


async def test_a_read_after_a_recompute_never_returns_the_old_score(
    cached_api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    api = cached_api
    tenant = await make_tenant()
    await add_signals(tenant, LOW)
    await recompute_and_wait(api, conn, tenant)
    old = await score(api, tenant)
    assert await api.ctx.cache.get(tenant) is not None, "the first read fills the cache"
    assert await score(api, tenant) == old

    # New signals land silently; the cached score stays until a recompute commits.
    await conn.execute(
        "UPDATE aiv_raw_signals SET aeo = 95, geo = 95, ugc = 95 WHERE dealer_id = %s", (tenant,)
    )
    assert await score(api, tenant) == old
    await recompute_and_wait(api, conn, tenant)
    fresh = await score(api, tenant)
    assert fresh != old
    assert fresh == await stored_score(conn, tenant)


async def test_a_summary_being_read_is_cached_again_as_soon_as_its_recompute_commits(
    cached_api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    api = cached_api
    read, cached_once = await make_tenant("read"), await make_tenant("cached once")
    for tenant in (read, cached_once):
        await add_signals(tenant, LOW)
        await recompute_and_wait(api, conn, tenant)
        old = await score(api, tenant)  # fills the cache
    await score(api, read)  # served from it: someone is reading this one
    await conn.execute(
        "UPDATE aiv_raw_signals SET aeo = 95, geo = 95, ugc = 95 WHERE dealer_id = ANY (%s)",
        ([read, cached_once],),
    )
    for tenant in (read, cached_once):
        await recompute_and_wait(api, conn, tenant)
    # The hub read the summary being read again with its eviction: the next read is a hit,
    # with the new score; the entry nobody read since it was cached is only evicted.
    body = await api.ctx.cache.get(read)
    assert body is not None
    assert float(json.loads(body)["aoerScore"]) == await stored_score(conn, read) != old
    assert await api.ctx.cache.get(cached_once) is None


async def test_a_read_racing_a_recompute_cannot_put_the_old_score_back(
    cached_api: Api, make_tenant: MakeTenant
) -> None:
    cache = cached_api.ctx.cache
    tenant = await make_tenant()
    ticket = cache.ticket(tenant)  # a read starts...
    await cache.evict([tenant])  # ...a recompute commits while it reads the old row...
    await cache.put(ticket, b'{"old": true}')  # ...and its result arrives late
    assert await cache.get(tenant) is None
    later = cache.ticket(tenant)
    await cache.put(later, b'{"new": true}')
    assert await cache.get(tenant) == b'{"new": true}'


async def test_replicas_share_redis_and_ignore_entries_older_than_their_evictions(
    redis_url: str, make_tenant: MakeTenant
) -> None:
    namespace = f"test-share-{time.time_ns()}"
    one = SummaryCache(RedisBackend(redis_url, namespace), ttl_s=60)
    two = SummaryCache(RedisBackend(redis_url, namespace), ttl_s=60)
    one.enabled = two.enabled = True
    try:
        tenant = await make_tenant()
        await one.put(one.ticket(tenant), b"shared")
        assert await two.get(tenant) == b"shared"
        # Replica one read the old row before the commit and writes it after replica two
        # saw the NOTIFY (replica one has not seen it yet): two must not serve it.
        stale_read = time.time()
        await two.evict([tenant])
        await one.backend.put(tenant, CacheEntry(b"stale", stale_read), 60)
        assert await two.get(tenant) is None
        assert await one.get(tenant) == b"stale"  # until its own NOTIFY arrives
        await one.evict([tenant])
        assert await one.get(tenant) is None
    finally:
        await one.close()
        await two.close()


async def test_an_entry_another_replica_wrote_before_a_forgotten_eviction_is_refused(
    redis_url: str,
) -> None:
    # Replica two's record of evictions overflows (a fleet refresh): what replica one writes
    # to Redis is still checked against its floor, and only a fresh entry is copied locally.
    namespace = f"test-floor-{time.time_ns()}"
    one = RedisBackend(redis_url, namespace)
    two = SummaryCache(TieredBackend(RedisBackend(redis_url, namespace), 60), 60, max_evictions=10)
    two.enabled = True
    try:
        tenant = uuid4()
        stale_read = time.time()
        await two.evict([tenant])
        await two.evict([uuid4() for _ in range(50)])  # pushes the tenant's eviction out
        assert two.remembered_evictions == 10
        await one.put(tenant, CacheEntry(b"stale", stale_read), 60)  # a lagging replica
        assert await two.get(tenant) is None
        floor = time.time()
        while (fresh_read := time.time()) == floor:  # strictly after the last eviction
            pass
        await one.put(tenant, CacheEntry(b"fresh", fresh_read), 60)
        assert await two.get(tenant) == b"fresh"
        await one.evict([tenant])  # gone from Redis: two's own copy still serves it
        assert await two.get(tenant) == b"fresh"
        await two.evict([tenant])
        assert await two.get(tenant) is None
    finally:
        await one.close()
        await two.close()


async def test_replicas_share_entries_through_redis(
    make_api: ApiFactory,
    redis_url: str,
    conn: Connection,
    make_tenant: MakeTenant,
    add_signals: AddSignals,
) -> None:
    namespace = f"test-replicas-{time.time_ns()}"
    one = await make_api(REDIS_URL=redis_url, namespace=namespace)
    two = await make_api(REDIS_URL=redis_url, namespace=namespace)
    tenant = await make_tenant()
    await add_signals(tenant, LOW)
    watchers = [one.ctx.hub.subscribe(tenant), two.ctx.hub.subscribe(tenant)]
    await recompute_through_worker(conn, [tenant])
    for watcher in watchers:
        await next_summary(watcher)
        watcher.close()
    first = await score(one, tenant)
    # Gone from the database behind both replicas' backs: the second still answers, from Redis.
    await conn.execute("DELETE FROM aoer_summary WHERE tenant_id = %s", (tenant,))
    assert await score(two, tenant) == first


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_entries_expire_after_the_ttl(
    request: pytest.FixtureRequest,
    make_api: ApiFactory,
    conn: Connection,
    make_tenant: MakeTenant,
    add_signals: AddSignals,
    backend: str,
) -> None:
    redis = {"REDIS_URL": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    api = await make_api(AOER_CACHE_TTL=0.3, **redis)
    tenant = await make_tenant()
    await add_signals(tenant, LOW)
    await recompute_and_wait(api, conn, tenant)
    await score(api, tenant)
    # Remove the summary behind the cache's back (no NOTIFY): the entry still answers...
    await conn.execute("DELETE FROM aoer_summary WHERE tenant_id = %s", (tenant,))
    await score(api, tenant)
    await asyncio.sleep(0.4)
    # ...until its TTL runs out.
    response = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert response.status_code == 404


async def test_redis_down_falls_back_to_postgres_with_a_warning(
    make_api: ApiFactory,
    conn: Connection,
    make_tenant: MakeTenant,
    add_signals: AddSignals,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aoer.api.cache")
    api = await make_api(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    tenant = await make_tenant()
    await add_signals(tenant, LOW)
    await recompute_through_worker(conn, [tenant])
    first = await score(api, tenant)
    await add_signals(tenant, HIGH)
    await recompute_and_wait(api, conn, tenant)
    started = time.perf_counter()
    assert await score(api, tenant) == await stored_score(conn, tenant) != first
    assert time.perf_counter() - started < 1.0, "a dead Redis must not slow reads down"
    assert any("Redis unavailable" in r.getMessage() for r in caplog.records)


async def test_a_lost_listener_bypasses_then_clears_the_cache(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, LOW)
    await recompute_and_wait(api, conn, tenant)
    await score(api, tenant)
    # A recompute whose NOTIFY the API never hears: its listener connection is cut first.
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN %%aoer_%%'"
    )
    await conn.execute("DELETE FROM aoer_summary WHERE tenant_id = %s", (tenant,))
    for _ in range(100):
        if not api.ctx.hub.listening.is_set():
            break
        await asyncio.sleep(0.05)
    await asyncio.wait_for(api.ctx.hub.listening.wait(), 10)  # reconnected
    response = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.admin
    )
    assert response.status_code == 404, "entries from before the gap are gone"


async def test_redis_keys_are_namespaced_and_expire(
    make_api: ApiFactory,
    redis_url: str,
    conn: Connection,
    make_tenant: MakeTenant,
    add_signals: AddSignals,
) -> None:
    api = await make_api(REDIS_URL=redis_url, AOER_CACHE_TTL=120)
    tenant = await make_tenant()
    await add_signals(tenant, LOW)
    await recompute_and_wait(api, conn, tenant)
    await score(api, tenant)
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"aoer:summary:*:{tenant}")]
        assert len(keys) == 1
        assert 0 < await client.ttl(keys[0]) <= 120
    finally:
        await client.aclose()


async def test_a_silent_redis_is_not_asked_again_until_its_retry_time() -> None:
    """A Redis that accepts connections but never answers costs one socket timeout, then is
    marked down: evictions too are skipped meanwhile (the event hub handles NOTIFYs one at a
    time; each eviction waiting out the timeout left it minutes behind in a fleet refresh).
    The processes' own eviction times keep a missed delete from serving a stale entry."""
    received: list[bytes] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            received.append(data)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0", "silent")
    try:
        await backend.evict([uuid4()])  # tried: nothing was known to be wrong yet
        asked = len(received)
        assert asked > 0
        for _ in range(3):
            await backend.evict([uuid4()])
        assert len(received) == asked, "a Redis marked down was asked again"
    finally:
        await backend.close()
        server.close()
