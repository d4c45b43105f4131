"""Server-Sent Events on a real socket: current state on connect, summary and queue events as
they commit, heartbeats, one LISTEN connection for all subscribers, clean disconnects."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from aoer import queue
from aoer.api.auth import LOGIN_PURPOSE
from aoer.api.events import BEHIND_REASON, RESYNC_REASON, Closing, ServerEvent, Subscription
from aoer.api.routes.stream import HEARTBEAT, RECHECK_S, event_stream
from aoer.db.pool import Connection
from tests.api.conftest import WORKER, Api, ApiFactory, recompute_through_worker
from tests.api.org_world import new_org, org_bearer
from tests.conftest import AddSignals, MakeTenant, eventually, session_of

STEADY = [{"days_ago": d, "aeo": "60", "geo": "50", "ugc": "40"} for d in range(6)]
WAIT_S = 5.0


class EventReader:
    """Parses a text/event-stream into (event, data) pairs and comment lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, within_s: float = WAIT_S) -> tuple[str, Any]:
        return await asyncio.wait_for(self._next(), within_s)

    async def _next(self) -> tuple[str, Any]:
        name, data = "message", None
        async for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
            elif line.startswith("retry: "):
                name, data = "retry", int(line[len("retry: ") :])
            elif line == "" and data is not None:
                return name, data
        raise EOFError("the stream ended")

    async def until(self, name: str, within_s: float = WAIT_S) -> Any:
        while True:
            got, data = await self.next(within_s)
            if got == name:
                return data

    async def read_for(self, seconds: float) -> None:
        """Read lines for `seconds` (heartbeats keep coming, every 0.2 s in these tests);
        EOFError if the stream ends meanwhile."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            try:
                line = await asyncio.wait_for(anext(self.lines), WAIT_S)
            except StopAsyncIteration:
                raise EOFError("the stream ended") from None
            if line.startswith(":"):
                self.comments.append(line)

    async def until_end(self, within_s: float) -> None:
        """Read whatever comes until the server ends the stream (EOFError) or time runs out."""
        async with asyncio.timeout(within_s):
            while True:
                await self._next()


@asynccontextmanager
async def open_stream(
    api: Api, tenant: UUID | None, headers: dict[str, str] | None = None
) -> AsyncIterator[EventReader]:
    """A tenant's stream, or the fleet's (`tenant` None); as admin unless `headers` say."""
    async with api.client.stream(
        "GET",
        "/api/aoer/stream",
        params={"tenantId": str(tenant)} if tenant is not None else {},
        headers=api.admin if headers is None else headers,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


@pytest.fixture
async def live(make_api: ApiFactory) -> Api:
    return await make_api(live=True)


@pytest.fixture
async def computed(conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals) -> UUID:
    tenant = await make_tenant()
    await add_signals(tenant, STEADY)
    await recompute_through_worker(conn, [tenant])
    return tenant


async def listeners(conn: Connection) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN %%aoer_%%'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])  # type: ignore[call-overload]


async def test_stream_sends_state_then_queue_and_summary_events_as_they_commit(
    live: Api, conn: Connection, computed: UUID
) -> None:
    tenant = computed
    async with open_stream(live, tenant, live.bearer(tenant=tenant)) as events:
        assert await events.next() == ("retry", 3000)
        name, summary = await events.next()
        assert name == "summary"
        assert (summary["tenantId"], summary["aoerScore"], summary["grade"]) == (
            str(tenant),
            51.5,
            "Fair",
        )
        assert await events.next() == (
            "queue",
            {"pending": 0, "processing": 0, "completed": 1, "failed": 0},
        )
        queued = await live.client.post(
            "/api/aoer/queue", json={"tenantId": str(tenant)}, headers=live.admin
        )
        assert queued.status_code == 202
        state = await events.until("queue")
        if state["pending"] == 0:  # the fixture's own recompute, heard late: skip it
            state = await events.until("queue")
        assert state == {
            "pending": 1,
            "processing": 0,
            "completed": 1,
            "failed": 0,
        }
        await conn.execute("UPDATE aiv_raw_signals SET aeo = 80 WHERE dealer_id = %s", (tenant,))
        jobs = await session_of(conn, lease_s=30).jobs.claim(WORKER, 10)
        await queue.process_batch(session_of(conn), WORKER, jobs)
        fresh = await events.until("summary")
        if fresh["aoerScore"] == 51.5:  # the fixture's own recompute, heard late: skip it
            fresh = await events.until("summary")
        assert fresh["aoerScore"] == 59.5  # 80*0.40 + 50*0.35 + 40*0.25
        # The event carries exactly what GET /api/aoer/summary now answers.
        got = await live.client.get(
            "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=live.admin
        )
        assert got.json() == fresh
        assert await events.until("queue") == {
            "pending": 0,
            "processing": 0,
            "completed": 2,
            "failed": 0,
        }


async def test_idle_streams_get_heartbeats(live: Api, computed: UUID) -> None:
    async with open_stream(live, computed) as events:
        await events.until("queue")
        # The fixture's own recompute may be heard late (its summary and queue state again);
        # after at most that one echo (two events) the stream falls quiet.
        for _ in range(3):
            try:
                name, _data = await events.next(within_s=0.7)
            except TimeoutError:
                break  # no event while idle...
            assert name in ("summary", "queue"), name
        else:
            pytest.fail("the idle stream kept sending events")
        assert ": heartbeat" in events.comments  # ...but heartbeats (every 0.2 s here)


async def test_one_listen_connection_fans_out_to_every_subscriber(
    live: Api, conn: Connection, computed: UUID
) -> None:
    async with many_streams(live, computed, 12) as streams:
        seen = [(await events.until("summary"))["lastUpdated"] for events in streams]
        assert live.ctx.hub.subscriber_count == 12
        assert await listeners(conn) == 1
        await recompute_through_worker(conn, [computed])
        for events, before in zip(streams, seen, strict=True):
            summary = await events.until("summary")
            while summary["lastUpdated"] == before:  # the fixture's recompute, heard late
                summary = await events.until("summary")
            assert summary["tenantId"] == str(computed)


async def test_disconnected_clients_are_unsubscribed(live: Api, computed: UUID) -> None:
    async with open_stream(live, computed) as events:
        await events.until("queue")
        assert live.ctx.hub.subscriber_count == 1
    await eventually(lambda: live.ctx.hub.subscriber_count == 0, "the stream unsubscribed")


async def test_the_stream_ends_when_the_token_expires(live: Api, computed: UUID) -> None:
    short = live.bearer(tenant=computed, ttl=timedelta(seconds=2))
    async with open_stream(live, computed, short) as events:
        await events.until("queue")
        with pytest.raises(EOFError):
            await events.until_end(within_s=5)


# DESIGN §12: a revoked key is refused within 5 s, a tenant moved away disappears from the
# old organisation at once; an open stream is no exception (checked every RECHECK_S).
REFUSED_WITHIN_S = 5.0


async def closed_because(events: EventReader) -> str:
    """Read until the server ends the stream; the reason its last comment line gives."""
    with pytest.raises(EOFError):
        await events.until_end(within_s=REFUSED_WITHIN_S)
    closing = [c for c in events.comments if c.startswith(": closed: ")]
    assert closing, f"the stream ended without saying why: {events.comments[-3:]}"
    return closing[-1].removeprefix(": closed: ")


@pytest.mark.parametrize("scope", ["tenant", "admin"])
async def test_revoking_a_key_ends_the_streams_it_opened(
    live: Api, computed: UUID, scope: str
) -> None:
    body = {"scope": scope, "tenantId": str(computed)} if scope == "tenant" else {"scope": scope}
    made = await live.client.post("/api/keys", json=body, headers=live.admin)
    assert made.status_code == 201, made.text
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    # A tenant key on its dealership's stream; an admin key on the fleet's.
    async with open_stream(live, computed if scope == "tenant" else None, key) as events:
        assert (await events.next())[0] == "retry"
        # Checked again and still allowed: the stream goes on past a recheck.
        await events.read_for(RECHECK_S + 0.5)
        assert ": heartbeat" in events.comments
        revoked = await live.client.delete(f"/api/keys/{made.json()['id']}", headers=live.admin)
        assert revoked.status_code == 204
        assert await closed_because(events) == "the API key was revoked"
    await eventually(lambda: live.ctx.hub.subscriber_count == 0, "the stream is released")


async def test_moving_a_tenant_to_another_organisation_ends_the_old_ones_stream(
    live: Api, conn: Connection, computed: UUID
) -> None:
    alpha, beta = await new_org(conn, "Alpha Auto Group"), await new_org(conn, "Beta Agency")
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (alpha, computed))
    async with open_stream(live, computed, org_bearer(live, alpha)) as events:
        await events.until("queue")
        moved = await live.client.patch(
            f"/api/tenants/{computed}", json={"orgId": str(beta)}, headers=live.admin
        )
        assert moved.status_code == 200, moved.text
        assert await closed_because(events) == (
            f"tenant {computed} is not in this token's organisation"
        )
    async with open_stream(live, computed, org_bearer(live, beta)) as events:
        await events.until("queue")  # the new organisation's stream is not affected


async def test_signing_out_ends_the_sessions_open_stream(live: Api, computed: UUID) -> None:
    browser = {"Origin": live.base_url, "Sec-Fetch-Site": "same-origin"}
    link = live.tokens.mint("admin", purpose=LOGIN_PURPOSE)
    signed_in = await live.client.post("/login", data={"token": link}, headers=browser)
    assert signed_in.status_code == 303, signed_in.text
    async with open_stream(live, computed, {}) as events:  # the cookie only
        await events.until("queue")
        out = await live.client.post("/logout", headers=browser)
        assert out.status_code == 200
        assert "signed out" in await closed_because(events)


async def test_stopping_the_server_ends_open_streams_promptly(live: Api, computed: UUID) -> None:
    assert live.server is not None
    async with open_stream(live, computed) as events:
        await events.until("queue")
        live.server.stop()
        with pytest.raises(EOFError):
            await events.until_end(within_s=3)
    await asyncio.wait_for(live.server.wait(), 3)


async def test_unknown_tenant_stream_is_404(live: Api) -> None:
    response = await live.client.get(
        "/api/aoer/stream",
        params={"tenantId": "00000000-0000-0000-0000-000000000001"},
        headers=live.admin,
    )
    assert response.status_code == 404
    assert live.ctx.hub.subscriber_count == 0


async def test_busy_streams_get_heartbeats_on_time_too() -> None:
    sub = Subscription(None, None, 100)  # type: ignore[arg-type]
    sub.close = lambda: None  # type: ignore[method-assign]  # no hub to leave
    stream = event_stream(sub, [], heartbeat_s=0.2, deadline=time.time() + 60)
    chunks: list[bytes] = []

    async def busy() -> None:
        for n in range(1000):
            sub.offer(ServerEvent("queue", str(n).encode()))
            await asyncio.sleep(0.02)  # ten events per heartbeat interval

    feeder = asyncio.create_task(busy())
    try:
        async with asyncio.timeout(1.1):
            async for chunk in stream:
                chunks.append(chunk)
    except TimeoutError:
        pass
    finally:
        feeder.cancel()
        await stream.aclose()
    assert sum(chunk.startswith(b"event: queue") for chunk in chunks) >= 20
    assert 4 <= chunks.count(HEARTBEAT) <= 6, "one heartbeat every 0.2 s, events or not"


async def test_a_stream_cancelled_as_an_event_arrives_ends() -> None:
    """The client leaving (Starlette cancels the stream) in the same turn as an event comes:
    on Python 3.11 `asyncio.wait_for` around the inbox swallowed that cancellation, and the
    stream ran on, sending heartbeats, until its token expired."""
    sub = Subscription(None, None, 100)  # type: ignore[arg-type]
    sub.close = lambda: None  # type: ignore[method-assign]  # no hub to leave
    stream = event_stream(sub, [], heartbeat_s=30, deadline=time.time() + 60)
    await anext(stream)  # the reconnect delay; next it waits on the inbox

    async def consume() -> None:
        async for _ in stream:
            pass

    task = asyncio.create_task(consume())
    for _ in range(100):  # a few turns of the loop, until it waits on the inbox
        if sub.inbox._getters:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0)
    assert sub.inbox._getters, "the stream never waited on its inbox"  # type: ignore[attr-defined]
    sub.offer(ServerEvent("queue", b"1"))
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done, "the stream went on after it was cancelled"
    assert task.cancelled()


def names_waiting(sub: Subscription) -> list[str]:
    return [f"{e.name} {e.data.decode()}" for e in sub.inbox._queue if isinstance(e, ServerEvent)]


def test_a_slow_tenant_stream_loses_only_what_a_later_event_replaces() -> None:
    """One tenant's stream, full: its oldest summary goes when a newer summary comes; when
    nothing waiting has a successor of its kind (the only summary, the only queue status, an
    alert), the stream ends with a reason the client acts on: it reconnects and reads the
    current state. Nothing is queued after that."""
    sub = Subscription(None, uuid4(), 3)  # type: ignore[arg-type]
    for name, n in (("summary", 0), ("queue", 1), ("alert", 2), ("summary", 3)):
        sub.offer(ServerEvent(name, str(n).encode()))
    assert names_waiting(sub) == ["queue 1", "alert 2", "summary 3"]
    sub.offer(ServerEvent("alert", b"4"))
    assert list(sub.inbox._queue) == [Closing(BEHIND_REASON)]
    sub.offer(ServerEvent("summary", b"5"))
    sub.offer(None)  # nor the hub's later shutdown
    assert list(sub.inbox._queue) == [Closing(BEHIND_REASON)]
    assert sub.dropped == 7


def test_a_slow_fleet_view_loses_its_oldest_summaries_but_never_an_alert() -> None:
    sub = Subscription(None, None, 3)  # type: ignore[arg-type]
    for name, n in (("summary", 0), ("alert", 1), ("summary", 2), ("summary", 3)):
        sub.offer(ServerEvent(name, str(n).encode()))
    assert names_waiting(sub) == ["alert 1", "summary 2", "summary 3"]
    for n in (4, 5):
        sub.offer(ServerEvent("alert", str(n).encode()))
    assert names_waiting(sub) == ["alert 1", "alert 4", "alert 5"]
    sub.offer(ServerEvent("summary", b"6"))  # only alerts wait: none may go
    assert list(sub.inbox._queue) == [Closing(BEHIND_REASON)]


def test_the_hubs_own_ending_reaches_a_full_inbox() -> None:
    sub = Subscription(None, None, 2)  # type: ignore[arg-type]
    for n in range(2):
        sub.offer(ServerEvent("alert", str(n).encode()))
    sub.offer(Closing(RESYNC_REASON))
    assert [sub.inbox.get_nowait() for _ in range(sub.inbox.qsize())] == [Closing(RESYNC_REASON)]


@asynccontextmanager
async def many_streams(api: Api, tenant: UUID, n: int) -> AsyncIterator[list[EventReader]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                open_stream(api, tenant, api.bearer("admin", subject=f"watcher-{i}"))
            )
            for i in range(n)
        ]


async def stream_status(api: Api, tenant: UUID | None, headers: dict[str, str]) -> httpx.Response:
    """Open a stream and answer its status (a refused one's body is read)."""
    params = {"tenantId": str(tenant)} if tenant is not None else {}
    async with api.client.stream(
        "GET", "/api/aoer/stream", params=params, headers=headers
    ) as response:
        if response.status_code != 200:
            await response.aread()
        return response


def assert_too_many(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 429
    assert setting in response.json()["error"]
    assert int(response.headers["Retry-After"]) > 0


async def test_one_principal_gets_at_most_its_stream_cap(
    make_api: ApiFactory, make_tenant: MakeTenant, computed: UUID
) -> None:
    api = await make_api(live=True, AOER_SSE_MAX_PER_PRINCIPAL=2)
    hub, owner = api.ctx.hub, (f"tenant:{computed}", "tenant", computed)
    other = await make_tenant("other")
    token = api.bearer(tenant=computed)
    same_subject = api.bearer(tenant=computed)  # another token of the same principal
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_stream(api, computed, token))
        await first.until("queue")
        async with open_stream(api, computed, same_subject) as second:
            await second.until("queue")
            assert_too_many(await stream_status(api, computed, token), "AOER_SSE_MAX_PER_PRINCIPAL")
            assert_too_many(
                await stream_status(api, computed, same_subject), "AOER_SSE_MAX_PER_PRINCIPAL"
            )
            async with open_stream(api, other, api.bearer(tenant=other)) as elsewhere:
                assert (await elsewhere.next())[0] == "retry", "other principals are not capped"
        # The second stream's client left: once the server sees that, its slot is free again.
        await eventually(lambda: hub.streams_of(owner) == 1, "the left stream frees its slot")
        async with open_stream(api, computed, same_subject) as again:
            await again.until("queue")
    await eventually(lambda: api.ctx.hub.subscriber_count == 0, "every stream is released")


async def test_the_server_gets_at_most_its_stream_cap(
    make_api: ApiFactory, make_tenant: MakeTenant, computed: UUID
) -> None:
    api = await make_api(live=True, AOER_SSE_MAX_STREAMS=2)
    async with open_stream(api, computed) as one:
        await one.until("queue")
        async with open_stream(api, computed, api.bearer(tenant=computed)) as two:
            await two.until("queue")
            other = await make_tenant("other")
            assert_too_many(
                await stream_status(api, other, api.bearer(tenant=other)), "AOER_SSE_MAX_STREAMS"
            )
            assert_too_many(await stream_status(api, None, api.admin), "AOER_SSE_MAX_STREAMS")
    await eventually(lambda: api.ctx.hub.subscriber_count == 0, "every stream is released")


async def test_a_refused_or_failed_stream_holds_no_slot(
    make_api: ApiFactory, computed: UUID
) -> None:
    api = await make_api(live=True, AOER_SSE_MAX_PER_PRINCIPAL=1)
    unknown = await stream_status(api, UUID(int=1), api.admin)
    assert unknown.status_code == 404
    async with open_stream(api, computed) as events:
        await events.until("queue")
        assert_too_many(await stream_status(api, computed, api.admin), "PER_PRINCIPAL")
    await eventually(lambda: api.ctx.hub.subscriber_count == 0, "the left stream is released")
    async with open_stream(api, computed) as events:
        await events.until("queue")


async def test_an_expired_token_frees_its_stream_slot(make_api: ApiFactory, computed: UUID) -> None:
    api = await make_api(live=True, AOER_SSE_MAX_PER_PRINCIPAL=1)
    short = api.bearer(tenant=computed, ttl=timedelta(seconds=2))
    async with open_stream(api, computed, short) as events:
        await events.until("queue")
        with pytest.raises(EOFError):
            await events.until_end(within_s=5)
    async with open_stream(api, computed, api.bearer(tenant=computed)) as events:
        await events.until("queue")


async def test_stopping_the_server_frees_every_stream_slot(
    make_api: ApiFactory, computed: UUID
) -> None:
    api = await make_api(live=True)
    assert api.server is not None
    async with many_streams(api, computed, 3) as streams:
        for events in streams:
            await events.until("queue")
        assert api.ctx.hub.streams_of(("watcher-0", "admin", None)) == 1
        api.server.stop()
        for events in streams:
            with pytest.raises(EOFError):
                await events.until_end(within_s=3)
    await asyncio.wait_for(api.server.wait(), 3)
    await eventually(lambda: api.ctx.hub.subscriber_count == 0, "every stream is released")
    assert api.ctx.hub.streams_of(("admin", "admin", None)) == 0


async def test_a_lost_event_feed_ends_open_streams_once_it_is_back(
    live: Api, conn: Connection, computed: UUID
) -> None:
    """NOTIFYs sent while the API's LISTEN connection is down are lost: once it listens again
    the open streams end, saying why, so their clients reconnect and read what they missed
    (instead of showing the old scores until the tenant's next recompute)."""
    async with open_stream(live, computed) as events:
        await events.until("queue")
        cur = await conn.execute(
            "SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %%aoer_%%'"
        )
        assert [r["gone"] for r in await cur.fetchall()] == [True]
        assert await closed_because(events) == RESYNC_REASON
    await eventually(lambda: live.ctx.hub.listening.is_set(), "the hub listens again")
    async with open_stream(live, computed) as again:  # a reconnect gets the state afresh
        assert (await again.until("summary"))["tenantId"] == str(computed)


async def test_a_failed_recompute_updates_the_queue_status_of_open_streams(
    live: Api, conn: Connection, computed: UUID
) -> None:
    """A failed attempt commits no summary; its NOTIFY (which workers ignore) still refreshes
    the queue tiles, and a "Recompute now" waiting on it stops waiting."""
    async with open_stream(live, computed) as events:
        assert (await events.until("queue"))["failed"] == 0
        session = session_of(conn, max_retries=1)
        await queue.enqueue_many(session, [computed], "urgent")
        while (await events.until("queue"))["pending"] == 0:
            pass  # the enqueue's own NOTIFY has been shown; what follows is the failure's
        [job] = await session.jobs.claim(WORKER, 1)
        [attempt] = await queue.fail(session, WORKER, [(job, "poisoned tenant")])
        assert attempt.status == "failed"
        while (status := await events.until("queue"))["failed"] == 0:
            pass
        assert (status["failed"], status["pending"]) == (1, 0)
