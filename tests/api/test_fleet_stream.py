"""The admin's fleet stream: `/api/aoer/stream` without `tenantId` carries every tenant's
summary events (the dashboard's fleet view); nobody else may open it."""

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


async def test_only_an_admin_may_stream_the_whole_fleet(api: Api, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    for headers in (api.bearer(tenant=tenant), api.bearer("service")):
        response = await api.client.get("/api/aoer/stream", headers=headers)
        assert response.status_code == 403
        assert "error" in response.json()
    assert (await api.client.get("/api/aoer/stream")).status_code == 401
