"""One LISTEN connection per API process, fanned out to the cache and to SSE subscribers.

When a worker commits a batch it NOTIFYs the recomputed tenant ids; this hub evicts their
cached summaries first, then pushes `summary` and `queue` events to every subscriber of
those tenants (and `alert` events for the alerts the batch raised, on `aoer_alerts`).
Queue NOTIFYs (enqueues) refresh the queue status of subscribed tenants.
Each subscriber has a small bounded queue, and a slow client never slows the others. When its
queue is full a tenant's stream loses its oldest summary or queue status that a later one of
the same kind replaces, and a fleet view its oldest summary (another dealership's: its row is
then refreshed by the page's next load, not live); never an alert. When nothing may go, the
stream is ended so that the client reconnects and reads the current state (a `: closed:`
line). While the listener is disconnected the cache is
bypassed, and it is cleared on reconnect, because evictions may have been missed in between.
Open subscriptions
are capped per owner (the principal) and in all (`max_per_principal`, `max_streams`): past
either, `subscribe` raises `TooManyRequests` (429); a closed subscription frees its slot.
"""

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from uuid import UUID

from aoer.api.cache import SummaryCache
from aoer.api.errors import TooManyRequests
from aoer.api.schemas import AlertOut, alert_json, queue_status_json, summary_json
from aoer.constants import ALERT_CHANNEL, QUEUE_CHANNEL, SUMMARY_CHANNEL
from aoer.errors import DatabaseError
from aoer.store import Store
from aoer.types import QueueStatus
from aoer.waiting import wait_set

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_SIZE = 16
FLEET_QUEUE_SIZE = 1024  # a fleet subscriber gets every tenant's summaries: room for a batch
QUEUE_REFRESH_DELAY_S = 0.1  # coalesces a burst of enqueues into one status query
RECONNECT_DELAY_S = 1.0
# The hub reads on the shared pool, one NOTIFY at a time: under pool pressure it waits at most
# this long for a connection, then gives up the read (a recompute's cached summaries are then
# only evicted), so invalidations never queue behind the pool's 30 s default.
HUB_READ_TIMEOUT_S = 1.0
LISTEN_READY_TIMEOUT_S = 5.0
MAX_STREAMS = 1000  # open subscriptions per process (AOER_SSE_MAX_STREAMS)
MAX_PER_PRINCIPAL = 10  # open subscriptions per owner (AOER_SSE_MAX_PER_PRINCIPAL)
FULL_RETRY_AFTER_S = 10  # the Retry-After of a 429: streams end as clients leave or tokens expire


@dataclass(frozen=True, slots=True)
class ServerEvent:
    name: str
    data: bytes

    def encode(self) -> bytes:
        return b"event: " + self.name.encode() + b"\ndata: " + self.data + b"\n\n"


@dataclass(frozen=True, slots=True)
class Closing:
    """The last thing a stream sends before the hub ends it, saying why (a comment line)."""

    reason: str

    def encode(self) -> bytes:
        return b": closed: " + self.reason.encode() + b"\n\n"


# NOTIFYs sent while the LISTEN connection was down are lost for good: rather than leave
# open dashboards on the scores they had, the hub ends their streams once it listens again,
# and each client reconnects and reads what it missed (live.js `onResync`).
RESYNC_REASON = "the server's event feed was interrupted; reconnect to catch up"
# A subscriber whose inbox is full of events none of which may be dropped has fallen behind:
# its stream ends, and the client reconnects and reads the current state (the alert feed too).
BEHIND_REASON = "this stream fell behind its events; reconnect to catch up"


class Inbox(asyncio.Queue[ServerEvent | Closing | None]):
    """A subscriber's bounded queue, which can give up its oldest superseded event. Like
    asyncio's own LifoQueue and PriorityQueue, it works on the items asyncio.Queue keeps in
    `_queue` (a deque)."""

    _queue: deque[ServerEvent | Closing | None]

    def drop_oldest_state(self, incoming: ServerEvent | Closing | None, *, fleet: bool) -> bool:
        """Drop the oldest waiting summary or queue status that may go: in one tenant's
        stream, one that a later event of the same kind (waiting, or `incoming`) replaces;
        in a fleet view, any summary. False when none may go (alerts are never dropped)."""
        if fleet:  # usually the first item: its 1,024 slots are not walked at every offer
            for i, item in enumerate(self._queue):
                if isinstance(item, ServerEvent) and item.name == "summary":
                    del self._queue[i]
                    return True
            return False
        kinds = [e.name if isinstance(e, ServerEvent) else "" for e in self._queue]
        if isinstance(incoming, ServerEvent):
            kinds.append(incoming.name)
        for i, kind in enumerate(kinds[: len(self._queue)]):
            if kind not in ("", "alert") and kind in kinds[i + 1 :]:
                del self._queue[i]
                return True
        return False


class Subscription:
    """One SSE client's inbox; `None` means the hub is shutting down, a `Closing` that it
    ends this stream. A subscription to tenant `None` (a fleet view) receives the summary and
    alert events of every tenant (an admin's) or, with `org_id`, of every tenant in that
    organisation when the event is published."""

    def __init__(
        self,
        hub: "EventHub",
        tenant_id: UUID | None,
        size: int,
        owner: Hashable = None,
        org_id: UUID | None = None,
    ) -> None:
        self.hub = hub
        self.tenant_id = tenant_id
        self.org_id = org_id
        self.owner = owner
        self.inbox = Inbox(maxsize=size)
        self.dropped = 0  # events never sent
        self.ending = False  # its last item (None or a Closing) is in the inbox

    def offer(self, event: ServerEvent | Closing | None) -> None:
        if self.ending:
            self.dropped += 1
            return
        if self.inbox.full():
            if self.inbox.drop_oldest_state(event, fleet=self.tenant_id is None):
                self.dropped += 1
            else:
                # Nothing may go: what waits gives way to the reason the client must resync
                # (or to the hub's own ending, which says more).
                while not self.inbox.empty():
                    self.inbox.get_nowait()
                    self.dropped += 1
                if isinstance(event, ServerEvent):
                    self.dropped += 1
                    event = Closing(BEHIND_REASON)
        self.ending = not isinstance(event, ServerEvent)
        self.inbox.put_nowait(event)

    def close(self) -> None:
        """Leave the hub and free the slot (closing twice is harmless)."""
        self.hub.unsubscribe(self)


class EventHub:
    def __init__(
        self,
        store: Store,
        cache: SummaryCache,
        *,
        subscriber_queue_size: int = SUBSCRIBER_QUEUE_SIZE,
        max_streams: int = MAX_STREAMS,
        max_per_principal: int = MAX_PER_PRINCIPAL,
    ) -> None:
        self.store = store
        self.cache = cache
        self.subscriber_queue_size = subscriber_queue_size
        self.max_streams = max_streams
        self.max_per_principal = max_per_principal
        self._per_owner: Counter[Hashable] = Counter()
        self.listening = asyncio.Event()
        self._subscribers: dict[UUID | None, set[Subscription]] = defaultdict(set)
        self._last_queue: dict[UUID | None, bytes] = {}
        self._task: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._queue_dirty = False

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    def streams_of(self, owner: Hashable) -> int:
        """Open subscriptions of `owner`."""
        return self._per_owner[owner]

    async def start(self) -> None:
        """Start listening; waits (briefly) until the LISTEN is in place."""
        self._task = asyncio.create_task(self._listen(), name="aoer-event-hub")
        if not await wait_set(self.listening, LISTEN_READY_TIMEOUT_S):
            logger.warning("event hub not listening yet; summaries bypass the cache meanwhile")

    async def stop(self) -> None:
        for task in (self._task, self._refresh):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.cache.enabled = False
        self.release_subscribers()

    def release_subscribers(self, closing: Closing | None = None) -> None:
        """End every open stream (the server is stopping: do not make it wait for them), with
        `closing`'s reason when given."""
        for subs in self._subscribers.values():
            for sub in subs:
                sub.offer(closing)

    def subscribe(
        self, tenant_id: UUID | None, owner: Hashable = None, *, org_id: UUID | None = None
    ) -> Subscription:
        """One tenant's events, or (`None`) every tenant's summary and alert events (with
        `org_id`: every tenant's of that organisation), for `owner` (who opened it: the caps
        count per owner). `TooManyRequests` past either cap."""
        if self.subscriber_count >= self.max_streams:
            raise TooManyRequests(
                f"this server has {self.max_streams} open event streams, its limit "
                "(AOER_SSE_MAX_STREAMS): retry later",
                retry_after_s=FULL_RETRY_AFTER_S,
            )
        if self._per_owner[owner] >= self.max_per_principal:
            raise TooManyRequests(
                f"this token's subject already has {self.max_per_principal} open event "
                "streams, its limit (AOER_SSE_MAX_PER_PRINCIPAL): close one or retry later",
                retry_after_s=FULL_RETRY_AFTER_S,
            )
        size = self.subscriber_queue_size if tenant_id is not None else FLEET_QUEUE_SIZE
        sub = Subscription(self, tenant_id, size, owner, org_id)
        self._subscribers[tenant_id].add(sub)
        self._per_owner[owner] += 1
        self._last_queue.pop(tenant_id, None)  # the next refresh reports it afresh
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.tenant_id)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        self._per_owner[sub.owner] -= 1
        if not self._per_owner[sub.owner]:
            del self._per_owner[sub.owner]
        if not subs:
            del self._subscribers[sub.tenant_id]
            self._last_queue.pop(sub.tenant_id, None)

    async def _listen(self) -> None:
        listened = False
        while True:
            try:
                channels = (SUMMARY_CHANNEL, QUEUE_CHANNEL, ALERT_CHANNEL)
                async with self.store.listen(*channels) as notifications:
                    try:
                        await self.cache.clear()
                        self.cache.enabled = True
                        self.listening.set()
                        if listened:
                            self.release_subscribers(Closing(RESYNC_REASON))
                        listened = True
                        self._queue_changed()
                        async for notify in notifications:
                            if notify.channel == SUMMARY_CHANNEL:
                                await self._summaries_changed(_tenant_ids(notify.payload))
                            elif notify.channel == ALERT_CHANNEL:
                                await self._alerts_raised(_tenant_ids(notify.payload))
                            else:
                                self._queue_changed()
                    finally:
                        self.cache.enabled = False
                        self.listening.clear()
            except asyncio.CancelledError:
                raise
            except (DatabaseError, OSError) as exc:
                logger.warning("event hub lost its database connection (%s); reconnecting", exc)
            except Exception:
                logger.exception("event hub error; reconnecting")
            await asyncio.sleep(RECONNECT_DELAY_S)

    async def _summaries_changed(self, tenant_ids: list[UUID]) -> None:
        """Tell the cache, read the new summaries of those being read from it and of those
        watched by subscribers in one statement (at most a NOTIFY's 150 tenants), replace
        the cached ones, then push to the subscribers: a subscriber told of a summary reads
        it fresh from the cache."""
        recompute = await self.cache.noticed(tenant_ids)
        tickets = [self.cache.ticket(t) for t in recompute.read]  # after `noticed`
        fleets = self._subscribers.get(None, set())
        every_tenant = any(sub.org_id is None for sub in fleets)  # an admin's fleet view
        org_fleets = self._org_fleets()
        bodies: dict[UUID, bytes] = {}
        statuses: dict[UUID, QueueStatus] = {}
        orgs: dict[UUID, UUID] = {}
        watched: list[UUID] = []
        direct = any(t in self._subscribers for t in tenant_ids)
        # No connection is taken when nobody reads or watches these tenants.
        if recompute.read or every_tenant or org_fleets or direct:
            try:
                async with self.store.session(timeout_s=HUB_READ_TIMEOUT_S) as session:
                    if org_fleets:  # which of these an organisation's fleet view sees
                        orgs = await session.tenants.orgs_of(tenant_ids)
                    watched = [
                        t
                        for t in tenant_ids
                        if every_tenant or t in self._subscribers or orgs.get(t) in org_fleets
                    ]
                    wanted = list(dict.fromkeys([*recompute.read, *watched]))
                    fresh = await session.scores.summaries(wanted) if wanted else []
                    subscribed = [t for t in watched if t in self._subscribers]
                    statuses = await session.jobs.statuses(subscribed) if subscribed else {}
                bodies = {summary.tenant_id: summary_json(summary) for summary in fresh}
            except DatabaseError as exc:
                logger.warning("could not read updated summaries: %s", exc)
        await self.cache.recomputed(
            recompute, [(t, bodies[t.tenant_id]) for t in tickets if t.tenant_id in bodies]
        )
        for tenant_id in watched:
            if tenant_id in bodies:
                event = ServerEvent("summary", bodies[tenant_id])
                self._publish(tenant_id, event, orgs.get(tenant_id))
        for tenant_id, status in statuses.items():
            body = queue_status_json(status)
            self._last_queue[tenant_id] = body
            self._publish(tenant_id, ServerEvent("queue", body))

    async def _alerts_raised(self, alert_ids: list[UUID]) -> None:
        """Push new alerts (NOTIFY carries their ids) to their tenants' subscribers and to
        the fleet view."""
        if not self._subscribers or not alert_ids:
            return
        orgs: dict[UUID, UUID] = {}
        try:
            async with self.store.session(timeout_s=HUB_READ_TIMEOUT_S) as session:
                raised = await session.alerts.by_ids(alert_ids)
                if raised and self._org_fleets():
                    orgs = await session.tenants.orgs_of([a.tenant_id for a in raised])
        except DatabaseError as exc:
            logger.warning("could not read new alerts for subscribers: %s", exc)
            return
        for alert in reversed(raised):  # oldest first
            event = ServerEvent("alert", alert_json(AlertOut.of(alert)))
            self._publish(alert.tenant_id, event, orgs.get(alert.tenant_id))

    def _queue_changed(self) -> None:
        self._queue_dirty = True
        if self._subscribers and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._refresh_queues())

    async def _refresh_queues(self) -> None:
        while self._queue_dirty:
            await asyncio.sleep(QUEUE_REFRESH_DELAY_S)
            self._queue_dirty = False
            watched = [t for t in self._subscribers if t is not None]
            if not watched:
                return
            try:
                async with self.store.session(timeout_s=HUB_READ_TIMEOUT_S) as session:
                    statuses = await session.jobs.statuses(watched)
            except DatabaseError as exc:
                logger.warning("could not refresh queue status for subscribers: %s", exc)
                return
            for tenant_id, status in statuses.items():
                body = queue_status_json(status)
                if self._last_queue.get(tenant_id) != body:
                    self._last_queue[tenant_id] = body
                    self._publish(tenant_id, ServerEvent("queue", body))

    def _org_fleets(self) -> set[UUID]:
        """The organisations whose fleet view is open (their events need each tenant's
        organisation, read when they are published)."""
        return {sub.org_id for sub in self._subscribers.get(None, ()) if sub.org_id is not None}

    def _publish(self, tenant_id: UUID, event: ServerEvent, org_id: UUID | None = None) -> None:
        """To the tenant's own subscribers and, for summaries and alerts, to the fleet views
        that see the tenant: every admin's, and those of the organisation it is in now."""
        for sub in list(self._subscribers.get(tenant_id, ())):
            sub.offer(event)
        if event.name in ("summary", "alert"):
            for sub in list(self._subscribers.get(None, ())):
                if sub.org_id is None or sub.org_id == org_id:
                    sub.offer(event)


def _tenant_ids(payload: str) -> list[UUID]:
    ids: list[UUID] = []
    for part in payload.split(","):
        with contextlib.suppress(ValueError):
            ids.append(UUID(part.strip()))
    return ids
