"""The fleet stream: `/api/aoer/stream` without `tenantId` carries every tenant's summary
events to an admin and its own tenants' to an organisation (the dashboard's fleet view);
nobody else may open it."""

import asyncio
import json
from typing import Any
from uuid import UUID

import httpx

from aoer.db.pool import Connection
from tests.api.conftest import Api, ApiFactory, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant, eventually

WAIT_S = 5.0


async def summaries(response: httpx.Response, wanted: int) -> list[dict[str, Any]]:
    """The first `wanted` summary events of an event stream (other events are skipped)."""
    found: list[dict[str, Any]] = []
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: ") and name == "summary":
            found.append(json.loads(line[len("data: ") :]))
            if len(found) == wanted:
                return found
    raise EOFError("the stream ended")


async def test_admin_fleet_stream_carries_every_tenants_summaries(
    make_api: ApiFactory, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    live = await make_api(live=True)
    tenants = [await make_tenant(f"Fleet {i}") for i in range(3)]
    for tenant in tenants:
        await add_signals(
            tenant, [{"days_ago": d, "aeo": "70", "geo": "70", "ugc": "70"} for d in range(6)]
        )
    async with live.client.stream("GET", "/api/aoer/stream", headers=live.admin) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reading = asyncio.create_task(summaries(response, len(tenants)))
        await eventually(lambda: live.ctx.hub.subscriber_count == 1, "the stream subscribed")
        await recompute_through_worker(conn, tenants)
        events = await asyncio.wait_for(reading, WAIT_S)
    assert {UUID(e["tenantId"]) for e in events} == set(tenants)
    assert {e["grade"] for e in events} == {"Good"}
    # The server notices the client left at its next write (a heartbeat at the latest).
    await eventually(lambda: live.ctx.hub.subscriber_count == 0, "the stream unsubscribed")


async def test_an_organisations_fleet_stream_carries_its_own_tenants_as_they_are_now(
    make_api: ApiFactory, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    live = await make_api(live=True)
    cur = await conn.execute(
        "INSERT INTO organizations (name) VALUES ('Lakeside Group'), ('Hill Group') RETURNING id"
    )
    ours_org, their_org = [row["id"] for row in await cur.fetchall()]
    ours = [await make_tenant(f"Lakeside {i}") for i in range(2)]
    theirs = await make_tenant("Hill 1")
    for tenant, org in ((ours[0], ours_org), (ours[1], ours_org), (theirs, their_org)):
        await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org, tenant))
        await add_signals(
            tenant, [{"days_ago": d, "aeo": "70", "geo": "70", "ugc": "70"} for d in range(6)]
        )
    headers = live.bearer("org", org_id=ours_org)
    seen: list[UUID] = []

    async def read(response: httpx.Response) -> None:
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: ") and name == "summary":
                seen.append(UUID(json.loads(line[len("data: ") :])["tenantId"]))

    async with live.client.stream("GET", "/api/aoer/stream", headers=headers) as response:
        assert response.status_code == 200
        reading = asyncio.create_task(read(response))
        await eventually(lambda: live.ctx.hub.subscriber_count == 1, "the stream subscribed")
        # Each recompute's events are published in turn: one that leaked would come first.
        await recompute_through_worker(conn, [theirs])
        await recompute_through_worker(conn, ours)
        await eventually(lambda: len(seen) >= 2, "our two summaries", WAIT_S)
        moved = ours[1]
        await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (their_org, moved))
        await recompute_through_worker(conn, [moved])
        await recompute_through_worker(conn, [ours[0]])
        await eventually(lambda: len(seen) >= 3, "the third summary", WAIT_S)
        reading.cancel()
    assert set(seen[:2]) == set(ours)
    assert seen[2:] == [ours[0]], "a tenant moved away is not streamed to its old organisation"


async def test_only_an_admin_or_an_organisation_may_stream_the_whole_fleet(
    api: Api, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    for headers in (api.bearer(tenant=tenant), api.bearer("service")):
        response = await api.client.get("/api/aoer/stream", headers=headers)
        assert response.status_code == 403
        assert "error" in response.json()
    assert (await api.client.get("/api/aoer/stream")).status_code == 401
