"""The summary cache: in-process, and shared through Redis by the replicas when REDIS_URL is set.

Entries are the exact response bytes of GET /api/aoer/summary. They are evicted when a
recompute commits (the NOTIFY fan-out in `events.py` calls `evict` in every API process), and
a read racing a recompute cannot put the old score back: each entry records when its database
read started, and a write (or an entry another process wrote to Redis) older than the
tenant's last eviction seen by this process is ignored. What this process's own copy holds
passed that check on its way in and leaves it on eviction, so it is served as it is.
Redis being down costs a warning and a database read, never an error.
"""

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

MEMORY_MAX_ENTRIES = 100_000
REDIS_TIMEOUT_S = 0.25  # a slow Redis must not make a read slower than the database
REDIS_RETRY_AFTER_S = 5.0  # after a failure, skip Redis this long before trying again
WARN_EVERY_S = 30.0
REDIS_KEY_PREFIX = "aoer:summary"
EVICTION_MEMORY_MARGIN_S = 60.0
# Evictions remembered per process, at most (~150 bytes each); beyond it the oldest become a
# floor for the age of the reads in flight and of the entries other processes wrote to Redis
# (SummaryCache._forget_old_evictions).
MAX_EVICTIONS = 100_000


@dataclass(frozen=True, slots=True)
class CacheEntry:
    body: bytes
    read_started: float  # wall-clock time the database read behind `body` began


# The in-process maps (entries, entries read, the record of evictions) are keyed by the
# tenant's UUID as an int and hold plain tuples of bytes and floats: the garbage collector
# tracks UUIDs and dataclass instances, not ints, and stops tracking such tuples after their
# first collection. Keyed by UUID, the record of the 100,000 evictions a fleet refresh fills
# put ~100,000 more objects in every full collection, each of which then stopped the API's
# event loop for 25-77 ms, three or four times every 5 s under the mixed row's drain
# (bench/README.md, issue 16); the entries of a fleet's dashboards added three objects each.
_Key = int


# Whether an entry read off a store other processes write (Redis) is too old to serve: its
# database read (tenant, time it started) began before the tenant's last eviction seen here.
Stale = Callable[[UUID, float], bool]


class CacheBackend(Protocol):
    # Entries this process wrote are returned as they are (they were checked on their way in
    # and are evicted here); entries another process wrote only when not `stale`.
    async def get(self, tenant_id: UUID, stale: Stale) -> CacheEntry | None: ...
    async def put(self, tenant_id: UUID, entry: CacheEntry, ttl_s: float) -> None: ...
    async def evict(self, tenant_ids: list[UUID]) -> None: ...
    # Those of `tenant_ids` whose entries have been read since they were written: worth
    # reading again when their recompute commits (SummaryCache.recomputed).
    def read_among(self, tenant_ids: list[UUID]) -> list[UUID]: ...
    async def clear(self) -> None: ...
    async def close(self) -> None: ...


class MemoryBackend:
    """A bounded in-process map with per-entry expiry. Only this process writes it, through
    `SummaryCache.put` (checked) or `TieredBackend` (checked), and its evictions remove
    entries: what it holds is current, so `get` needs no `stale`."""

    def __init__(self, max_entries: int = MEMORY_MAX_ENTRIES) -> None:
        # expiry (monotonic), body, when its database read started (CacheEntry.read_started)
        self._entries: OrderedDict[_Key, tuple[float, bytes, float]] = OrderedDict()
        self._max_entries = max_entries
        self._read: set[_Key] = set()  # entries served since they were written

    async def get(self, tenant_id: UUID, stale: Stale | None = None) -> CacheEntry | None:
        key = tenant_id.int
        found = self._entries.get(key)
        if found is None:
            return None
        expires, body, read_started = found
        if expires <= time.monotonic():
            self._entries.pop(key, None)
            self._read.discard(key)
            return None
        self._read.add(key)
        return CacheEntry(body, read_started)

    async def put(self, tenant_id: UUID, entry: CacheEntry, ttl_s: float) -> None:
        key = tenant_id.int
        self._entries[key] = (time.monotonic() + ttl_s, entry.body, entry.read_started)
        self._entries.move_to_end(key)
        self._read.discard(key)
        while len(self._entries) > self._max_entries:
            self._read.discard(self._entries.popitem(last=False)[0])

    async def evict(self, tenant_ids: list[UUID]) -> None:
        for tenant_id in tenant_ids:
            key = tenant_id.int
            self._entries.pop(key, None)
            self._read.discard(key)

    def read_among(self, tenant_ids: list[UUID]) -> list[UUID]:
        return [t for t in tenant_ids if (key := t.int) in self._read and key in self._entries]

    async def clear(self) -> None:
        self._entries.clear()
        self._read.clear()

    async def close(self) -> None:
        await self.clear()


class RedisBackend:
    """Redis shared by every replica; every failure degrades to a miss, with a warning."""

    def __init__(self, url: str, namespace: str) -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._prefix = f"{REDIS_KEY_PREFIX}:{namespace}:"
        self._down_until = 0.0
        self._warned_at = 0.0

    def _key(self, tenant_id: UUID) -> str:
        return f"{self._prefix}{tenant_id}"

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, action: str, exc: Exception) -> None:
        now = time.monotonic()
        self._down_until = now + REDIS_RETRY_AFTER_S
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            logger.warning(
                "Redis unavailable (%s: %s); summaries are read from PostgreSQL meanwhile",
                action,
                exc,
            )

    async def get(self, tenant_id: UUID, stale: Stale) -> CacheEntry | None:
        if not self._available():
            return None
        try:
            raw = await self._client.get(self._key(tenant_id))
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return None
        if not isinstance(raw, bytes):
            return None
        stamp, _, body = raw.partition(b"\n")
        try:
            entry = CacheEntry(body, float(stamp))
        except ValueError:
            return None
        return None if stale(tenant_id, entry.read_started) else entry

    async def put(self, tenant_id: UUID, entry: CacheEntry, ttl_s: float) -> None:
        if not self._available() or ttl_s <= 0:
            return
        value = f"{entry.read_started:.6f}\n".encode() + entry.body
        try:
            await self._client.set(self._key(tenant_id), value, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self._failed("set", exc)

    async def evict(self, tenant_ids: list[UUID]) -> None:
        # Skipped while marked down, as reads and writes are: a Redis that accepts connections
        # but never answers would hold the event hub for the socket timeout on every NOTIFY
        # (minutes behind through a fleet refresh). A missed delete is covered by the
        # eviction times every process keeps (`SummaryCache._stale`).
        if not self._available():
            return
        try:
            await self._client.unlink(*(self._key(t) for t in tenant_ids))
        except (RedisError, OSError) as exc:
            self._failed("evict", exc)

    def read_among(self, tenant_ids: list[UUID]) -> list[UUID]:
        return []  # what each process reads is known to its local copy (TieredBackend)

    async def clear(self) -> None:
        try:
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=f"{self._prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                await self._client.unlink(*batch)
        except (RedisError, OSError) as exc:
            self._failed("clear", exc)

    async def close(self) -> None:
        await self._client.aclose()


class TieredBackend:
    """Redis behind an in-process copy. Every API process hears every recompute (the NOTIFY
    fan-out), so the local copy is exactly as fresh as Redis and saves a Redis round trip
    on most reads; Redis still shares warm entries between replicas."""

    def __init__(self, shared: CacheBackend, ttl_s: float) -> None:
        self.shared = shared
        self.local = MemoryBackend()
        self.ttl_s = ttl_s

    async def get(self, tenant_id: UUID, stale: Stale) -> CacheEntry | None:
        entry = await self.local.get(tenant_id)
        if entry is not None:
            return entry
        entry = await self.shared.get(tenant_id, stale)
        if entry is not None:
            # The local copy lives no longer than the shared entry would have.
            left = entry.read_started + self.ttl_s - time.time()
            if left > 0:
                await self.local.put(tenant_id, entry, left)
        return entry

    async def put(self, tenant_id: UUID, entry: CacheEntry, ttl_s: float) -> None:
        await self.local.put(tenant_id, entry, ttl_s)
        await self.shared.put(tenant_id, entry, ttl_s)

    async def evict(self, tenant_ids: list[UUID]) -> None:
        await self.local.evict(tenant_ids)
        await self.shared.evict(tenant_ids)

    def read_among(self, tenant_ids: list[UUID]) -> list[UUID]:
        return self.local.read_among(tenant_ids)

    async def clear(self) -> None:
        await self.local.clear()
        await self.shared.clear()

    async def close(self) -> None:
        await self.local.close()
        await self.shared.close()


@dataclass(frozen=True, slots=True)
class ReadTicket:
    tenant_id: UUID
    started: float


@dataclass(frozen=True, slots=True)
class Recompute:
    """A recompute this process heard of (SummaryCache.noticed): when, and which of its
    tenants' entries were being read."""

    at: float
    read: list[UUID]


class SummaryCache:
    """Freshness rules over a backend; disabled while no NOTIFY listener guards it."""

    def __init__(
        self, backend: CacheBackend, ttl_s: float, max_evictions: int = MAX_EVICTIONS
    ) -> None:
        self.backend = backend
        self.ttl_s = ttl_s
        self.enabled = False  # set by the event hub once it listens for recomputes
        # Each tenant's last eviction, oldest first (an eviction moves its tenant to the end).
        self._evicted_at: OrderedDict[_Key, float] = OrderedDict()
        self._max_evictions = max_evictions
        self._cleared_at = 0.0

    @property
    def remembered_evictions(self) -> int:
        return len(self._evicted_at)

    def _stale(self, tenant_id: UUID, read_started: float) -> bool:
        return read_started <= max(self._evicted_at.get(tenant_id.int, 0.0), self._cleared_at)

    async def get(self, tenant_id: UUID) -> bytes | None:
        """The cached body. This process's copy is served as it is: checking its entries
        against the record of evictions too made every entry older than the record's floor
        a miss once a fleet refresh overflowed it (every ~20 s through a 150,000-job drain,
        most of the mixed row's misses: bench/README.md, issue 16)."""
        if not self.enabled or self.ttl_s <= 0:
            return None
        entry = await self.backend.get(tenant_id, self._stale)
        return None if entry is None else entry.body

    def ticket(self, tenant_id: UUID) -> ReadTicket:
        """Take before reading the database; `put` then refuses a result a recompute overtook."""
        return ReadTicket(tenant_id, time.time())

    async def put(self, ticket: ReadTicket, body: bytes) -> None:
        if not self.enabled or self.ttl_s <= 0 or self._stale(ticket.tenant_id, ticket.started):
            return
        await self.backend.put(ticket.tenant_id, CacheEntry(body, ticket.started), self.ttl_s)

    async def evict(self, tenant_ids: Iterable[UUID]) -> None:
        """Forget these tenants' entries: their recompute committed."""
        await self._evict(list(tenant_ids), time.time())

    async def _evict(self, ids: list[UUID], at: float) -> None:
        if not ids:
            return
        evicted = self._evicted_at
        for tenant_id in ids:
            key = tenant_id.int
            evicted[key] = at
            evicted.move_to_end(key)
        self._forget_old_evictions(at)
        await self.backend.evict(ids)

    async def noticed(self, tenant_ids: list[UUID]) -> Recompute:
        """A recompute of these tenants committed (its NOTIFY arrived). Entries nobody read
        since they were cached are evicted now; those being read stay served, as they were
        until this moment, while the caller reads their new summaries (tickets taken after
        this) and hands them to `recomputed`, which replaces them: a dashboard polling through
        a fleet refresh keeps hitting the cache instead of queueing its misses behind the
        refresh's statements (bench/README.md, issue 16)."""
        recompute = Recompute(time.time(), self.backend.read_among(tenant_ids))
        keep = set(recompute.read)
        await self._evict([t for t in tenant_ids if t not in keep], recompute.at)
        return recompute

    async def recomputed(self, recompute: Recompute, fresh: list[tuple[ReadTicket, bytes]]) -> None:
        """Evict the entries `noticed` kept, as of the NOTIFY, and cache the new summaries
        read since (each under a `ticket` taken after `noticed`); a tenant without one (a
        failed read) is only evicted."""
        await self._evict(recompute.read, recompute.at)
        for ticket, body in fresh:
            await self.put(ticket, body)

    async def clear(self) -> None:
        """Forget everything (the listener reconnected: evictions may have been missed)."""
        self._cleared_at = time.time()
        await self.backend.clear()

    def _forget_old_evictions(self, now: float) -> None:
        """Drop evictions from the old end: those no entry written before them can outlive,
        then, past `max_evictions`, the oldest, whose times become the floor below which
        every read in flight and every entry from Redis counts as stale (`_cleared_at`): a
        few extra misses, never a stale read.

        Amortised O(1) an eviction. It used to rebuild the whole record on every NOTIFY once
        it held 100,000 tenants, all recent during a refresh: O(fleet) a NOTIFY, the API
        process's CPU gone at 100,000 dealerships and more (bench/README.md, issue 16)."""
        evicted = self._evicted_at
        horizon = now - self.ttl_s - EVICTION_MEMORY_MARGIN_S
        while evicted:
            key, at = next(iter(evicted.items()))
            if at > horizon and len(evicted) <= self._max_evictions:
                return
            del evicted[key]
            if at > horizon:
                self._cleared_at = max(self._cleared_at, at)

    async def close(self) -> None:
        await self.backend.close()


def make_cache(redis_url: str | None, namespace: str, ttl_s: float) -> SummaryCache:
    backend: CacheBackend = (
        TieredBackend(RedisBackend(redis_url, namespace), ttl_s) if redis_url else MemoryBackend()
    )
    return SummaryCache(backend, ttl_s)
