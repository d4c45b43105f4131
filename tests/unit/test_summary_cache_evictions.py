"""The summary cache's record of evictions through a fleet refresh: bounded, amortised O(1)
an eviction, never a stale read when it forgets, no miss for what the process cached itself,
and nothing for the garbage collector to walk however much it holds (src/aoer/api/cache.py)."""

import gc
import time
from uuid import UUID, uuid4

from aoer.api.cache import MemoryBackend, SummaryCache

NOTIFY_IDS = 150  # tenant ids per summaries NOTIFY (notify_summaries)


def next_instant() -> None:
    """Until the wall clock the cache stamps with (time.time) has moved on."""
    now = time.time()
    while time.time() == now:
        pass


def cache(max_evictions: int) -> SummaryCache:
    summaries = SummaryCache(MemoryBackend(), ttl_s=300, max_evictions=max_evictions)
    summaries.enabled = True
    return summaries


async def refresh(summaries: SummaryCache, tenants: int) -> list[UUID]:
    """Evict `tenants` new tenants the way a refresh's NOTIFYs do."""
    ids = [uuid4() for _ in range(tenants)]
    for start in range(0, tenants, NOTIFY_IDS):
        await summaries.evict(ids[start : start + NOTIFY_IDS])
    return ids


async def test_the_record_of_evictions_stays_bounded_through_a_fleet_refresh() -> None:
    # It used to keep every eviction of the last ttl + 60 s and rebuild itself on each NOTIFY
    # once it held 100,000: a fleet of 1,000,000 kept a million and re-read them 6,667 times.
    summaries = cache(max_evictions=1_000)
    await refresh(summaries, 20_000)
    assert summaries.remembered_evictions == 1_000


async def test_a_read_that_started_before_a_forgotten_eviction_is_still_refused() -> None:
    summaries = cache(max_evictions=10)
    tenant = uuid4()
    ticket = summaries.ticket(tenant)  # a read of the old summary starts
    next_instant()
    await summaries.evict([tenant])  # its recompute commits
    await refresh(summaries, 50)  # and the record of that eviction is pushed out
    assert summaries.remembered_evictions == 10
    await summaries.put(ticket, b'{"old": true}')
    assert await summaries.get(tenant) is None
    fresh = summaries.ticket(tenant)
    await summaries.put(fresh, b'{"new": true}')
    assert await summaries.get(tenant) == b'{"new": true}'


async def test_an_entry_read_after_the_forgotten_evictions_is_still_served() -> None:
    summaries = cache(max_evictions=10)
    await refresh(summaries, 20)
    next_instant()
    tenant = uuid4()
    await summaries.put(summaries.ticket(tenant), b'{"score": 1}')
    next_instant()
    await refresh(summaries, 5)  # pushes out evictions older than the read
    assert await summaries.get(tenant) == b'{"score": 1}'


async def test_an_entry_cached_here_is_served_until_its_own_eviction_however_many_others_come() -> (
    None
):
    # A fleet refresh pushes the record's floor past every entry cached before it; this
    # process's own copy is current all the same (its evictions remove entries), so the
    # entry stays a hit until its own tenant's recompute, not a miss every ~20 s.
    summaries = cache(max_evictions=10)
    tenant = uuid4()
    await summaries.put(summaries.ticket(tenant), b'{"score": 1}')
    next_instant()
    await refresh(summaries, 50)
    assert summaries.remembered_evictions == 10
    assert await summaries.get(tenant) == b'{"score": 1}'
    await summaries.evict([tenant])
    assert await summaries.get(tenant) is None


def tracked_objects() -> int:
    """Objects the garbage collector walks in a full collection, once the garbage is gone."""
    gc.collect()
    return len(gc.get_objects())


async def test_what_the_cache_holds_adds_nothing_for_the_garbage_collector_to_walk() -> None:
    # Keyed by UUID (objects the collector tracks), the record of a fleet refresh's 100,000
    # evictions put ~100,000 more objects in every full collection: each then stopped the
    # API's event loop for 25-77 ms, three or four times every 5 s under the mixed row's drain.
    tenants = 20_000
    summaries = cache(max_evictions=tenants)
    before = tracked_objects()
    ids = await refresh(summaries, tenants)  # the record of evictions, full
    for tenant in ids[: tenants // 2]:  # half of them cached and read again
        await summaries.put(summaries.ticket(tenant), b'{"aoerScore": 71.5}')
        assert await summaries.get(tenant) is not None
    assert summaries.remembered_evictions == tenants
    del ids, tenant  # the caller's UUIDs, as a NOTIFY's are once it is handled
    grown = tracked_objects() - before
    assert grown < tenants // 100, f"{grown} more objects for the collector to walk"
