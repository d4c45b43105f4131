"""GET /api/aoer/summary's additions (DESIGN §13) on constructed dealerships: the last change's
split, the 7- and 30-day changes, and each recommendation rule with its numbers, the expected
values computed here independently with Decimal."""

import math
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from aoer.constants import RECOMPUTE_EVENT
from aoer.db.pool import Connection
from tests.api.conftest import Api, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant, eventually, session_of

V1 = {"aeo": Decimal("0.40"), "geo": Decimal("0.35"), "ugc": Decimal("0.25")}


def rows(days: range, **values: str) -> list[dict[str, Any]]:
    return [{"days_ago": d, **values} for d in days]


def v1_score(aeo: Decimal, geo: Decimal, ugc: Decimal, volatility: Decimal) -> Decimal:
    linear = V1["aeo"] * aeo + V1["geo"] * geo + V1["ugc"] * ugc
    raw = linear * (1 - min(volatility / 20, Decimal("0.30")))
    return raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def median_disc(values: list[Decimal]) -> Decimal:
    """percentile_disc(0.5): the first value whose cumulative share reaches one half."""
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) * 0.5) - 1]


async def summary(api: Api, tenant: UUID) -> dict[str, Any]:
    response = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.bearer(tenant=tenant)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rule(body: dict[str, Any], rule_id: str) -> dict[str, Any]:
    [found] = [r for r in body["recommendations"] if r["id"] == rule_id]
    return found


async def backdate_event(conn: Connection, tenant: UUID, days: int, score: str) -> None:
    await conn.execute(
        "INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)"
        " VALUES (%s, %s, jsonb_build_object('aoerScore', %s::numeric, 'visibilityRisk', 0.20),"
        " now() - make_interval(days => %s))",
        (tenant, RECOMPUTE_EVENT, score, days),
    )


async def test_summary_carries_the_last_split_and_the_7_and_30_day_changes(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant, fresh = await make_tenant("Old Motors"), await make_tenant("New Motors")
    for t in (tenant, fresh):
        await add_signals(t, rows(range(6), aeo="60.00", geo="50.00", ugc="40.00"))
    await backdate_event(conn, tenant, 10, "45.00")
    await backdate_event(conn, tenant, 40, "30.00")
    await recompute_through_worker(conn, [tenant, fresh])
    first = await summary(api, fresh)
    assert first["change"] is None  # a first recompute has nothing to compare with
    assert (first["change7d"], first["change30d"]) == (None, None)  # no history that old

    await conn.execute("UPDATE aiv_raw_signals SET aeo = 70 WHERE dealer_id = %s", (tenant,))
    await recompute_through_worker(conn, [tenant])
    body = await summary(api, tenant)
    now = v1_score(Decimal(70), Decimal(50), Decimal(40), Decimal(0))
    assert Decimal(str(body["aoerScore"])) == now == Decimal("55.50")
    assert body["change"] == {
        "aeo": 4.0,  # 0.40 x (70 - 60)
        "geo": 0.0,
        "ugc": 0.0,
        "volatility": 0.0,
        "model": 0.0,
        "rounding": 0.0,
    }
    assert Decimal(str(body["change7d"])) == now - Decimal("45.00")
    assert Decimal(str(body["change30d"])) == now - Decimal("30.00")


async def summary_after(api: Api, conn: Connection, tenant: UUID) -> dict[str, Any]:
    """The summary of the tenant's latest recompute as the API serves it: its cached copy is
    evicted by the recompute's NOTIFY, which may land after the next read. (Waiting only for
    a newer copy than the last one read could return the first of two recomputes.)"""
    cur = await conn.execute(
        "SELECT last_updated FROM aoer_summary WHERE tenant_id = %s", (tenant,)
    )
    row = await cur.fetchone()
    assert row is not None
    latest = row["last_updated"]
    found: dict[str, Any] = {}

    async def caught_up() -> bool:
        nonlocal found
        found = await summary(api, tenant)
        return datetime.fromisoformat(found["lastUpdated"]) == latest

    await eventually(caught_up, "the API to serve the latest recompute's summary")
    return found


async def test_the_last_move_outlives_recomputes_that_change_nothing(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """The split of the last recompute is ±0.00 after any refresh of unchanged data; the
    summary's `lastMove` keeps the last recompute that moved the score, for the "Why it moved"
    panel (a fall explained in the morning was blank by the afternoon's refresh)."""
    tenant = await make_tenant("Falling Motors")
    await add_signals(tenant, rows(range(6), aeo="60.00", geo="50.00", ugc="40.00"))
    await recompute_through_worker(conn, [tenant])
    first = await summary(api, tenant)
    assert first["lastMove"] is None  # nothing to compare with yet
    await conn.execute("UPDATE aiv_raw_signals SET aeo = 30 WHERE dealer_id = %s", (tenant,))
    await recompute_through_worker(conn, [tenant])
    fell = await summary_after(api, conn, tenant)
    move = fell["lastMove"]
    assert (move["previousScore"], move["aoerScore"]) == (51.5, 39.5)  # 0.40 x (30 - 60)
    assert move["change"] == fell["change"]
    assert move["change"]["aeo"] == -12.0
    for _ in range(2):  # the scheduled refresh, "Recompute now": nothing changed
        await recompute_through_worker(conn, [tenant])
    later = await summary_after(api, conn, tenant)
    assert set(later["change"].values()) == {0.0}
    assert later["lastMove"] == move
    cur = await conn.execute(
        "SELECT max(created_at) AS at FROM metrics_events WHERE tenant_id = %s"
        " AND (event_data ->> 'aoerScore')::numeric = 39.5"
        " AND (event_data #>> '{previous,aoerScore}')::numeric = 51.5",
        (tenant,),
    )
    row = await cur.fetchone()
    assert row is not None
    assert datetime.fromisoformat(move["at"]) == row["at"]
    # Into and out of "No data" is no change to split (0031), nor a last move: the fall to
    # 0.00 when the data stops, the jump back when it returns.
    await conn.execute("DELETE FROM aiv_raw_signals WHERE dealer_id = %s", (tenant,))
    await recompute_through_worker(conn, [tenant])
    gone = await summary_after(api, conn, tenant)
    assert (gone["grade"], gone["change"]) == ("No data", None)
    assert gone["lastMove"] == move
    await add_signals(tenant, rows(range(6), aeo="70.00", geo="50.00", ugc="40.00"))
    await recompute_through_worker(conn, [tenant])
    back = await summary_after(api, conn, tenant)
    assert (back["aoerScore"], back["change"]) == (55.5, None)
    assert back["lastMove"] == move
    # Past the look-back, no move is claimed.
    await conn.execute(
        "UPDATE metrics_events SET created_at = created_at - interval '31 days'"
        " WHERE tenant_id = %s AND (event_data ->> 'aoerScore')::numeric = 39.5"
        " AND (event_data #>> '{previous,aoerScore}')::numeric = 51.5",
        (tenant,),
    )
    await recompute_through_worker(conn, [tenant])
    assert (await summary_after(api, conn, tenant))["lastMove"] is None


async def test_no_data_rule(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, rows(range(31, 36), aeo="60.00"))  # all outside the window
    await recompute_through_worker(conn, [tenant])
    found = rule(await summary(api, tenant), "no_data")
    assert found["severity"] == "critical"
    assert "30 days" in found["message"]
    assert "0.00" in found["message"]
    assert "1.00" in found["message"]


async def test_stale_data_rule_says_how_old_and_when_the_window_empties(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, rows(range(10, 16), aeo="60.00"))  # newest 10 days old, 6 points
    await recompute_through_worker(conn, [tenant])
    body = await summary(api, tenant)
    assert Decimal(str(body["visibilityRisk"])) == Decimal("0.60")
    found = rule(body, "stale_data")
    assert found["severity"] == "warning"
    assert "10 days old" in found["message"]
    assert "in 21 days" in found["message"]  # day 10 leaves the 30-day window after 31 - 10
    assert [r["id"] for r in body["recommendations"]] == ["stale_data"]


async def test_few_data_points_rule_says_how_many_more_days(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, rows(range(3), aeo="60.00"))
    await recompute_through_worker(conn, [tenant])
    body = await summary(api, tenant)
    assert Decimal(str(body["visibilityRisk"])) == Decimal("0.80")
    found = rule(body, "few_data_points")
    assert "Only 3 data points" in found["message"]
    assert "2 more days" in found["message"]


async def test_high_volatility_rule_gains_with_a_steady_aeo_and_at_the_fleet_median(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    noisy = await make_tenant("Noisy Motors")
    await add_signals(
        noisy,
        [
            {"days_ago": d, "aeo": "20.00" if d % 2 else "60.00", "geo": "50.00", "ugc": "40.00"}
            for d in range(6)
        ],
    )
    steady = [await make_tenant(f"Steady {i}") for i in range(2)]
    for t in steady:
        await add_signals(t, rows(range(6), aeo="50.00", geo="50.00", ugc="50.00"))
    await recompute_through_worker(conn, [noisy, *steady])
    await session_of(conn).scores.refresh_medians()
    body = await summary(api, noisy)

    aoe = [Decimal(20), Decimal(60)] * 3
    mean = sum(aoe, Decimal(0)) / len(aoe)
    volatility = (sum(((a - mean) ** 2 for a in aoe), Decimal(0)) / (len(aoe) - 1)).sqrt()
    volatility = volatility.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(str(body["metrics"]["volatility"])) == volatility == Decimal("21.91")
    score = v1_score(mean, Decimal(50), Decimal(40), volatility)
    assert Decimal(str(body["aoerScore"])) == score
    at_15 = v1_score(mean, Decimal(50), Decimal(40), Decimal(15)) - score
    steady = v1_score(mean, Decimal(50), Decimal(40), Decimal(0)) - score
    fleet_median = median_disc([volatility, Decimal(0), Decimal(0)])
    at_median = v1_score(mean, Decimal(50), Decimal(40), fleet_median) - score
    assert at_15 == 0  # the penalty is capped from volatility 6: 15 still takes 30 %
    found = rule(body, "high_volatility")
    assert found["severity"] == "warning"
    assert Decimal(str(found["expectedGain"])) == steady == Decimal("13.05")
    assert f"volatility is {volatility} (over 15)" in found["message"]
    assert "takes 30% off the score" in found["message"]
    assert "gain 0.00" not in found["message"], "no advice of a gain that is nothing"
    assert "the penalty shrinks only below 6," in found["message"]
    assert f"a steady AEO (volatility 0) would gain {steady} points" in found["message"]
    assert (
        f"fleet median (3 dealerships) of {fleet_median:.2f}, {at_median} points"
        in (found["message"])
    )


async def test_weakest_component_rule_uses_the_organisation_median_and_the_exact_gain(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    cur = await conn.execute("INSERT INTO organizations (name) VALUES ('Acme Group') RETURNING id")
    org = (await cur.fetchone() or {})["id"]
    members = {"20.00": await make_tenant("Acme Weak")}
    for geo in ("60.00", "70.00", "80.00"):
        members[geo] = await make_tenant(f"Acme {geo}")
    others = [await make_tenant(f"Lone {i}") for i in range(3)]
    for geo, t in members.items():
        await conn.execute("UPDATE tenants SET org_id = %s WHERE id = %s", (org, t))
        await add_signals(t, rows(range(6), aeo="60.00", geo=geo, ugc="40.00"))
    for t in others:
        await add_signals(t, rows(range(6), aeo="60.00", geo="5.00", ugc="40.00"))
    await recompute_through_worker(conn, [*members.values(), *others])
    await session_of(conn).scores.refresh_medians()
    body = await summary(api, members["20.00"])

    org_median = median_disc([Decimal(g) for g in members])
    fleet_median = median_disc([Decimal(g) for g in members] + [Decimal(5)] * 3)
    assert (org_median, fleet_median) == (Decimal(60), Decimal(20))  # the fleet's: no gain
    score = v1_score(Decimal(60), Decimal(20), Decimal(40), Decimal(0))
    gain = v1_score(Decimal(60), org_median, Decimal(40), Decimal(0)) - score
    found = rule(body, "weakest_component")
    assert found["severity"] == "info"
    assert found["component"] == "geo"
    assert Decimal(str(found["expectedGain"])) == gain == Decimal("14.00")
    assert "organisation median (4 dealerships) of 60.00" in found["message"]
    assert f"score {score} → {score + gain}" in found["message"]
    # a dealership outside any organisation is compared with the fleet (7 dealerships)
    lone = rule(await summary(api, others[0]), "weakest_component")
    lone_score = v1_score(Decimal(60), Decimal(5), Decimal(40), Decimal(0))
    lone_gain = v1_score(Decimal(60), fleet_median, Decimal(40), Decimal(0)) - lone_score
    assert Decimal(str(lone["expectedGain"])) == lone_gain == Decimal("5.25")
    assert "fleet median (7 dealerships) of 20.00" in lone["message"]


async def test_the_medians_of_an_empty_fleet_are_none_not_an_error(conn: Connection) -> None:
    # A fresh `aoer up` refreshes the medians before any dealership has a summary.
    assert await session_of(conn).scores.refresh_medians() == 0
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_component_medians")
    row = await cur.fetchone()
    assert row is not None
    assert row["n"] == 0
