"""POST /api/observations (DESIGN §14): all or none, every bad row named, signals derived
without overwriting supplied values, tenants queued; tenant and organisation isolation."""

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from aoer.api.limits import MAX_BODY_BYTES, body_limit
from aoer.api.schemas import MAX_OBSERVATION_ROWS
from aoer.db.pool import Connection, Pool
from aoer.store import Scope, Store
from tests.api.conftest import Api, count
from tests.api.test_observation_metrics import obs
from tests.conftest import MakeTenant, utc_today


async def send(api: Api, rows: list[dict[str, Any]], **body: Any) -> Any:
    return await api.client.post(
        "/api/observations", json={"observations": rows, **body}, headers=api.admin
    )


async def signal_row(conn: Connection, tenant: UUID, days_back: int) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT aeo, aeo_derived, geo, geo_derived FROM aiv_raw_signals"
        " WHERE dealer_id = %s AND date = current_date - %s::integer",
        (tenant, days_back),
    )
    return await cur.fetchone()


async def test_every_bad_row_is_named_with_its_field_and_nothing_is_written(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    rows = [
        obs(t, 0, "chatgpt", "fine", mentioned=True),
        obs(t, 0, "ChatGPT", "upper case engine"),
        obs(t, 0, "chat-gpt", "dash in engine"),
        obs(t, 0, "claude", "position zero", mentioned=True, position=0),
        obs(t, 0, "claude", "sentiment too high", sentiment="1.5"),
        obs(t, 0, "claude", "sentiment too low", sentiment=-1.01),
        obs(t, 0, "claude", "ftp url", cited=True, citedUrls=["ftp://lakeside.example/x"]),
        obs(t, 0, "claude", "script url", cited=True, citedUrls=["javascript:alert(1)"]),
        obs(t, 0, "claude", "   "),
        obs(t, -1, "claude", "future"),
        obs(t, 0, "claude", "position without mention", position=2),
        obs(t, 0, "claude", "urls without citation", citedUrls=["https://x.example/"]),
    ]
    response = await send(api, rows)
    assert response.status_code == 422, response.text
    body = response.json()
    found = {(e["row"], e["field"]) for e in body["errors"]}
    assert found == {
        (1, "engine"),
        (2, "engine"),
        (3, "position"),
        (4, "sentiment"),
        (5, "sentiment"),
        (6, "citedUrls.0"),
        (7, "citedUrls.0"),
        (8, "prompt"),
        (9, "date"),
        (10, "position"),
        (11, "citedUrls"),
    }
    messages = {e["row"]: e["message"] for e in body["errors"]}
    assert messages[1].startswith("'ChatGPT' is not an engine name: lower-case letters")
    assert not [m for m in messages.values() if m.startswith("Value error")], messages
    assert "not an http(s) URL" in messages[6]
    assert "position is given but mentioned is false" in messages[10]
    # Its column's bounds in one message, as a signal's (1.5 read "no more than 3 digits").
    assert messages[4] == "must be -1 to 1, at most 2 decimals (got '1.5')"
    assert messages[5] == "must be -1 to 1, at most 2 decimals (got -1.01)"
    assert body["error"].startswith("row 1 (counting from 0), engine:")
    assert await count(conn, "answer_observations") == 0


async def test_an_unknown_dealer_and_a_repeated_prompt_are_named_and_nothing_is_written(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t, stranger = await make_tenant(), uuid4()
    rows = [
        obs(t, 0, "chatgpt", "a"),
        obs(stranger, 0, "chatgpt", "a"),
        obs(t, 0, "chatgpt", "a", mentioned=True),
    ]
    response = await send(api, rows)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"row": 1, "field": "dealerId", "message": f"unknown tenant {stranger}"},
        {
            "row": 2,
            "field": "prompt",
            "message": "duplicates row 0 (same dealer, date, engine and prompt)",
        },
    ]
    assert await count(conn, "answer_observations") == 0
    assert await count(conn, "aiv_raw_signals") == 0


async def test_more_than_10000_rows_are_refused_whole(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    rows = [obs(t, 0, "chatgpt", f"p{i}") for i in range(10_001)]
    response = await send(api, rows)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "observations"
    assert "10000" in response.json()["errors"][0]["message"]
    assert await count(conn, "answer_observations") == 0


async def test_10000_full_observations_fit_in_one_request_and_more_bytes_are_refused(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()

    def full(i: int) -> dict[str, Any]:  # ~520 bytes: what a tracked answer usually holds
        return obs(
            t,
            i % 30,
            "chatgpt",
            f"Which dealership near Lakeside has the best certified pre-owned SUVs? #{i}",
            mentioned=True,
            position=2,
            cited=True,
            citedUrls=[
                "https://lakeside-motors.example/inventory/certified-suvs",
                "https://lakeside-motors.example/service/specials",
            ],
            competitors=["Harbor Ford", "Summit Toyota of Lakeside", "Northgate Honda", "Bay KIA"],
            sentiment="0.45",
        )

    rows = [full(i) for i in range(MAX_OBSERVATION_ROWS)]
    assert len(json.dumps({"observations": rows})) > MAX_BODY_BYTES  # over the general limit
    response = await send(api, rows)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["upserted"] == MAX_OBSERVATION_ROWS
    assert await count(conn, "answer_observations") == MAX_OBSERVATION_ROWS

    limit = body_limit("/api/observations")
    huge = b'{"observations": [], "pad": "' + b"x" * limit.max_bytes + b'"}'
    response = await api.client.post(
        "/api/observations",
        content=huge,
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == (
        f"request body too large: the limit is {limit.max_bytes} bytes"
        " (send at most 10,000 observations per request)"
    )


async def test_a_position_past_the_column_is_named_not_a_server_error(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    rows = [
        obs(t, 0, "chatgpt", "fine", mentioned=True, position=2**31 - 1),
        obs(t, 0, "claude", "too far", mentioned=True, position=2**31),
    ]
    response = await send(api, rows)
    assert response.status_code == 422, response.text
    assert [(e["row"], e["field"]) for e in response.json()["errors"]] == [(1, "position")]
    assert await count(conn, "answer_observations") == 0


async def test_derived_signals_fill_each_day_and_queue_the_tenant(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    rows = [
        obs(t, 1, "chatgpt", "a", mentioned=True, cited=True),
        obs(t, 1, "gemini", "a", mentioned=True),
        obs(t, 1, "claude", "a"),
        obs(t, 2, "chatgpt", "a"),
    ]
    response = await send(api, rows)
    assert response.json() == {"upserted": 4, "tenants": 1, "derived": 1, "queued": 1}
    # 2 of 3 mentioned → 66.67; 1 of 3 cited → 33.33 (round(100 × rate, 2)).
    assert await signal_row(conn, t, 1) == {
        "aeo": Decimal("66.67"),
        "aeo_derived": True,
        "geo": Decimal("33.33"),
        "geo_derived": True,
    }
    assert await signal_row(conn, t, 2) == {
        "aeo": Decimal("0.00"),
        "aeo_derived": True,
        "geo": Decimal("0.00"),
        "geo_derived": True,
    }
    cur = await conn.execute("SELECT priority, status FROM aoer_queue WHERE tenant_id = %s", (t,))
    assert await cur.fetchall() == [{"priority": "medium", "status": "queued"}]
    # A re-derivation updates a derived value.
    await send(api, [obs(t, 1, "claude", "a", mentioned=True)])
    assert (await signal_row(conn, t, 1) or {})["aeo"] == Decimal("100.00")
    # The same observations again derive nothing new: nothing is said derived or queued.
    await conn.execute("DELETE FROM aoer_queue")
    again = await send(api, [obs(t, 1, "claude", "a", mentioned=True)])
    assert again.json() == {"upserted": 1, "tenants": 1, "derived": 0, "queued": 0}


async def test_a_value_supplied_directly_is_never_overwritten_by_a_derivation(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    day = (utc_today() - timedelta(1)).isoformat()
    supplied = [{"dealerId": str(t), "date": day, "aeo": "12.50"}]
    assert (
        await api.client.post("/api/signals", json={"signals": supplied}, headers=api.admin)
    ).status_code == 200
    await send(api, [obs(t, 1, "chatgpt", "a", mentioned=True, cited=True)])
    # aeo was supplied: kept; geo was not: derived.
    assert await signal_row(conn, t, 1) == {
        "aeo": Decimal("12.50"),
        "aeo_derived": False,
        "geo": Decimal("100.00"),
        "geo_derived": True,
    }
    await send(api, [obs(t, 1, "chatgpt", "a", mentioned=True, cited=False)])
    assert await signal_row(conn, t, 1) == {
        "aeo": Decimal("12.50"),
        "aeo_derived": False,
        "geo": Decimal("0.00"),
        "geo_derived": True,
    }
    # Re-sending the day's signals without geo keeps the derived geo; with geo, supplies it.
    await api.client.post("/api/signals", json={"signals": supplied}, headers=api.admin)
    assert (await signal_row(conn, t, 1) or {})["geo"] == Decimal("0.00")
    supplied[0]["geo"] = "40"
    await api.client.post("/api/signals", json={"signals": supplied}, headers=api.admin)
    both = await send(api, [obs(t, 1, "chatgpt", "a", mentioned=True, cited=True)])
    assert both.json()["derived"] == 0, "every value of the day was supplied: none derived"
    assert await signal_row(conn, t, 1) == {
        "aeo": Decimal("12.50"),
        "aeo_derived": False,
        "geo": Decimal("40.00"),
        "geo_derived": False,
    }


async def test_without_derive_signals_nothing_is_derived_or_queued(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    response = await send(api, [obs(t, 0, "chatgpt", "a", mentioned=True)], deriveSignals=False)
    assert response.json() == {"upserted": 1, "tenants": 1, "derived": 0, "queued": 0}
    assert await count(conn, "aiv_raw_signals") == 0
    assert await count(conn, "aoer_queue") == 0


async def test_a_tenant_sends_and_reads_only_its_own(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    a, b = await make_tenant("A"), await make_tenant("B")
    await send(api, [obs(b, 0, "chatgpt", "b only", mentioned=True, competitors=["X"])])
    as_a = api.bearer(tenant=a)
    own = await api.client.post(
        "/api/observations", json={"observations": [obs(a, 0, "gemini", "a")]}, headers=as_a
    )
    assert own.status_code == 200, own.text
    other = await api.client.post(
        "/api/observations", json={"observations": [obs(b, 0, "gemini", "a")]}, headers=as_a
    )
    assert other.status_code == 403
    assert (
        await api.client.get(f"/api/aoer/engines?tenantId={b}", headers=as_a)
    ).status_code == 403
    mine = (await api.client.get(f"/api/aoer/engines?tenantId={a}", headers=as_a)).json()
    assert (mine["overall"]["answers"], mine["competitors"]) == (1, [])
    unknown = await api.client.get(f"/api/aoer/engines?tenantId={uuid4()}", headers=api.admin)
    assert unknown.status_code == 404
    assert (await api.client.get(f"/api/aoer/engines?tenantId={a}")).status_code == 401


@pytest.mark.parametrize("claim", ["tenant_id", "org_id"])
async def test_row_level_security_limits_observations_to_the_tenant_and_its_organisation(
    pool: Pool, conn: Connection, make_tenant: MakeTenant, api: Api, claim: str
) -> None:
    a, b = await make_tenant("A"), await make_tenant("B")
    cur = await conn.execute("INSERT INTO organizations (name) VALUES ('Group') RETURNING id")
    org = (await cur.fetchone() or {})["id"]
    await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org, a))
    await send(api, [obs(a, 0, "chatgpt", "q"), obs(b, 0, "chatgpt", "q")])
    claims = {"sub": "x", "role": "tenant" if claim == "tenant_id" else "org"}
    claims[claim] = str(a if claim == "tenant_id" else org)
    async with Store(pool, str(pool.conninfo)).session(Scope(claims)) as session:
        report = await session.observations.report(b)
        assert report.overall.answers == 0
        assert (await session.observations.report(a)).overall.answers == 1
        cur = await session.conn.execute("SELECT DISTINCT dealer_id FROM answer_observations")
        assert [r["dealer_id"] for r in await cur.fetchall()] == [a]
