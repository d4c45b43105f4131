"""The dashboard's pages over HTTP (no browser): who sees what, escaping, assets, headers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from aoer.dashboard.render import CONTENT_SECURITY_POLICY, ago, assets, fixed, percent, signed
from aoer.db.pool import Connection
from aoer.store import fleet as fleet_store
from tests.api.conftest import Api, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant, session_of


async def test_pages_without_a_session_answer_with_a_sign_in_page(api: Api) -> None:
    for path in (
        "/dashboard",
        "/dashboard/fleet",
        f"/dashboard/tenant/{'0' * 8}-0000-0000-0000-{'0' * 12}",
    ):
        response = await api.client.get(path)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/html")
        assert "Sign in to see the dashboard" in response.text
        assert "aoer up" in response.text


async def test_dashboard_sends_admins_to_the_fleet_and_tenants_to_their_page(
    api: Api, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    to_fleet = await api.client.get("/dashboard", headers=api.admin)
    assert (to_fleet.status_code, to_fleet.headers["location"]) == (303, "/dashboard/fleet")
    own = await api.client.get("/dashboard", headers=api.bearer(tenant=tenant))
    assert (own.status_code, own.headers["location"]) == (303, f"/dashboard/tenant/{tenant}")
    service = await api.client.get("/dashboard", headers=api.bearer("service"))
    assert service.status_code == 403


async def test_tenant_page_escapes_data_and_sends_security_headers(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant("<script>alert('x')</script> Motors")
    await add_signals(
        tenant, [{"days_ago": d, "aeo": "64", "geo": "64", "ugc": "64"} for d in range(6)]
    )
    await session_of(conn).scores.recompute([tenant])

    page = await api.client.get(f"/dashboard/tenant/{tenant}", headers=api.bearer(tenant=tenant))

    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Motors" in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    assert 'data-bind="aoerScore">64.00<' in page.text
    assert "Good" in page.text
    # every script is a file the app serves itself, by content-hashed URL
    for name in ("live.js", "chart.js", "tenant.js"):
        assert f'src="/dashboard/static/{name}?v={assets()[name].version}"' in page.text
    assert "<script>" not in page.text


async def test_a_dealership_without_signals_is_told_what_happens_next_in_its_words(
    api: Api, make_tenant: MakeTenant
) -> None:
    """A dealer's own page said "Send them with POST /api/signals or aoer signals import", and
    "Press Recompute now" when there was nothing to compute; an operator still reads how."""
    tenant = await make_tenant("Quiet Motors")

    def shown(page: str, notice: str) -> bool:
        start = page.index(f'id="{notice}"')
        return "hidden" not in page[start : page.index(">", start)]

    dealer = (await api.client.get(f"/dashboard/tenant/{tenant}",
                                   headers=api.bearer(tenant=tenant))).text  # fmt: skip
    assert shown(dealer, "notice-nosignals")
    assert "sent each day by your data provider or your agency" in " ".join(dealer.split())
    assert "POST /api/signals" not in dealer
    assert not shown(dealer, "notice-never")  # nothing to compute without signals
    admin = (await api.client.get(f"/dashboard/tenant/{tenant}", headers=api.admin)).text
    assert "<code>POST /api/signals</code>" in admin
    assert not shown(admin, "notice-never")


async def test_unknown_and_malformed_dealerships(api: Api, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    missing = await api.client.get(
        "/dashboard/tenant/00000000-0000-0000-0000-000000000001", headers=api.admin
    )
    assert missing.status_code == 404
    malformed = await api.client.get("/dashboard/tenant/not-a-uuid", headers=api.admin)
    assert malformed.status_code == 404
    # a tenant user learns nothing about other ids, existing or not
    other = await api.client.get(
        "/dashboard/tenant/00000000-0000-0000-0000-000000000001",
        headers=api.bearer(tenant=tenant),
    )
    assert other.status_code == 403


async def test_fleet_page_and_stats_are_for_admins_only(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant("Able Motors")
    await add_signals(tenant, [{"days_ago": 0, "aeo": "90"}])
    await session_of(conn).scores.recompute([tenant])

    page = await api.client.get(
        "/dashboard/fleet",
        params={"sort": "nonsense", "grade": "x", "page": "1"},
        headers=api.admin,
    )
    assert page.status_code == 200
    assert "Able Motors" in page.text
    assert 'aria-sort="descending"' in page.text  # unknown sort: the default, risk descending

    stats = await api.client.get("/dashboard/fleet/stats", headers=api.admin)
    assert stats.status_code == 200
    body = stats.json()
    assert body["totals"] == {
        "tenants": 1,
        "inactive": 0,
        "computed": 1,
        "noData": 0,
        "meanScore": 36.0,  # 90 * 0.40: no GEO or UGC, one day, no volatility
        "byRisk": {"Low": 0, "Medium": 0, "High": 1, "Critical": 0, "No data": 0},
    }
    assert body["nextTick"] is None  # AOER_RUN_CRON is off in these tests

    tenant_token = api.bearer(tenant=tenant)
    assert (await api.client.get("/dashboard/fleet", headers=tenant_token)).status_code == 403
    assert (await api.client.get("/dashboard/fleet/stats", headers=tenant_token)).status_code == 403


async def test_static_files_are_only_the_packaged_ones(api: Api) -> None:
    css = await api.client.get(
        f"/dashboard/static/dashboard.css?v={assets()['dashboard.css'].version}"
    )
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    stale = await api.client.get("/dashboard/static/dashboard.css?v=old")
    assert stale.headers["cache-control"] == "no-cache"
    for path in ("/dashboard/static/nope.js", "/dashboard/static/..%2Froutes.py"):
        assert (await api.client.get(path)).status_code == 404


def test_numbers_and_relative_times_read_as_on_the_page() -> None:
    assert fixed(None) == "—"
    assert fixed(Decimal("64")) == "64.00"
    assert fixed(3, 0) == "3"
    # Halves away from zero, as the API rounds (Decimal's formatting alone gives 12.2, -0.12)
    assert percent(Decimal("0.1225")) == "12.3 %"
    assert fixed(Decimal("-0.125")) == "-0.13"
    assert fixed(Decimal("2.5"), 0) == "3"
    assert percent(None) == "—"
    assert (signed(Decimal("1.205")), signed(Decimal("-3.4")), signed(0), signed(None)) == (
        "+1.21",
        "−3.40",
        "0.00",
        "—",
    )
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert ago(None) == "never"
    assert ago(now - timedelta(seconds=2), now) == "just now"
    assert ago(now - timedelta(seconds=42), now) == "42 s ago"
    assert ago(now - timedelta(minutes=61), now) == "1 h 1 min ago"
    assert ago(now - timedelta(days=3), now) == "3 days ago"
    assert ago(now + timedelta(hours=2), now) == "in 2 h"


async def test_a_used_login_link_shows_a_sign_in_page_to_browsers_and_json_to_clients(
    api: Api,
) -> None:
    from aoer.api.auth import LOGIN_PURPOSE

    link = api.tokens.mint("admin", purpose=LOGIN_PURPOSE)
    same_origin = {"Origin": api.base_url, "Sec-Fetch-Site": "same-origin"}
    first = await api.client.post("/login", data={"token": link}, headers=same_origin)
    assert first.status_code == 303
    html = {"Accept": "text/html,application/xhtml+xml"}
    again = await api.client.get("/login", params={"token": link}, headers=html)
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("text/html")
    assert "already used" in again.text
    assert "Sign in to see the dashboard" in again.text
    scripted = await api.client.get("/login", params={"token": "junk"})
    assert scripted.status_code == 401
    assert scripted.json()["error"].startswith("invalid token")


async def test_a_dealership_with_no_data_says_so_and_leaves_the_fleet_mean_alone(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """Issue 12: n = 0 keeps its stored v1 values (0.00, 1.00; DESIGN §3) but is graded
    "No data", shown as "no data", and left out of the fleet's mean and risk levels."""
    full = await make_tenant("Full Motors")
    empty = await make_tenant("Empty Motors")
    stale = await make_tenant("Stale Motors")  # signals, but none in the 30-day window
    await add_signals(
        full, [{"days_ago": d, "aeo": "64", "geo": "64", "ugc": "64"} for d in range(6)]
    )
    await add_signals(stale, [{"days_ago": 40, "aeo": "90"}])
    await recompute_through_worker(conn, [full, empty, stale])

    for tenant in (empty, stale):
        summary = await api.client.get(
            "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.admin
        )
        body = summary.json()
        assert (body["aoerScore"], body["visibilityRisk"]) == (0, 1), "stored v1 values stay"
        assert (body["grade"], body["riskLevel"]) == ("No data", "No data")
        assert body["metrics"] == {"error": "No data available"}
        history = await api.client.get(
            "/api/aoer/history", params={"tenantId": str(tenant)}, headers=api.admin
        )
        assert [(p["grade"], p["riskLevel"]) for p in history.json()["history"]] == [
            ("No data", "No data")
        ]
    graded = await api.client.get(
        "/api/aoer/summary", params={"tenantId": str(full)}, headers=api.admin
    )
    assert (graded.json()["grade"], graded.json()["riskLevel"]) == ("Good", "Low")

    stats = (await api.client.get("/dashboard/fleet/stats", headers=api.admin)).json()
    assert stats["totals"] == {
        "tenants": 3,
        "inactive": 0,
        "computed": 3,
        "noData": 2,
        "meanScore": 64.0,  # Full Motors alone, not (64 + 0 + 0) / 3
        "byRisk": {"Low": 1, "Medium": 0, "High": 0, "Critical": 0, "No data": 2},
    }

    page = await api.client.get(f"/dashboard/tenant/{empty}", headers=api.admin)
    assert 'data-bind="aoerScore">no data<' in page.text
    assert 'data-bind="visibilityRisk">no data<' in page.text
    assert 'class="badge grade-no-data" data-bind="grade">No data<' in page.text
    assert 'class="badge risk-no-data" data-bind="riskLevel">No data<' in page.text
    assert "Poor" not in page.text
    assert "Critical" not in page.text
    assert '<span class="no-data">no data</span>' in page.text, "its recompute, in the list"

    fleet = await api.client.get("/dashboard/fleet", params={"sort": "score"}, headers=api.admin)
    rows = fleet.text.split('<tr data-tenant-id="')[1:]
    assert [row.split('"')[0] for row in rows] == [str(full), str(empty), str(stale)], (
        "by score, dealerships with no data come after those with data, in both directions"
    )
    assert rows[1].count(">no data<") == 2, "score and risk cells"
    only = await api.client.get("/dashboard/fleet", params={"grade": "No data"}, headers=api.admin)
    assert "Empty Motors" in only.text
    assert "Full Motors" not in only.text


async def three_movers(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> tuple[UUID, UUID, UUID]:
    """A dealership that rose over the last 7 days, one that fell, one without a week-old
    score."""
    rising, falling, new = (
        await make_tenant("Rising Motors"),
        await make_tenant("Falling Motors"),
        await make_tenant("New Motors"),
    )
    for tenant, aeo in ((rising, "40"), (falling, "80"), (new, "60")):
        await add_signals(tenant, [{"days_ago": d, "aeo": aeo} for d in range(6)])
    await recompute_through_worker(conn, [rising, falling])
    await conn.execute(  # those recomputes become last week's
        "UPDATE metrics_events SET created_at = now() - interval '8 days'"
    )
    for tenant, aeo in ((rising, "70"), (falling, "50")):
        await conn.execute("DELETE FROM aiv_raw_signals WHERE dealer_id = %s", (tenant,))
        await add_signals(tenant, [{"days_ago": d, "aeo": aeo} for d in range(6)])
    await recompute_through_worker(conn, [rising, falling, new])
    return rising, falling, new


def fleet_order(page: str) -> list[UUID]:
    return [UUID(part[:36]) for part in page.split('<tr data-tenant-id="')[1:]]


async def test_the_fleet_shows_each_dealerships_change_over_seven_days(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """An analyst sees who moved this week without opening every dealership: the fleet's
    "7 days" column is the API's change7d, signed; blank without a score a week old."""
    rising, falling, new = await three_movers(conn, make_tenant, add_signals)
    expected = {}
    for tenant in (rising, falling, new):
        body = (
            await api.client.get(
                "/api/aoer/summary", params={"tenantId": str(tenant)}, headers=api.admin
            )
        ).json()
        expected[tenant] = body["change7d"]
    assert expected[rising] > 0 > expected[falling]
    assert expected[new] is None
    page = (await api.client.get("/dashboard/fleet", headers=api.admin)).text
    for tenant, shown in (
        (rising, f"+{Decimal(str(expected[rising])):.2f}"),
        (falling, f"−{abs(Decimal(str(expected[falling]))):.2f}"),
        (new, "—"),
    ):
        row = page.split(f'data-tenant-id="{tenant}"', 1)[1].split("</tr>", 1)[0]
        assert f'data-cell="change7d">{shown}<' in row, row


async def test_the_fleet_sorts_by_the_seven_day_change_largest_drop_first(
    api: Api,
    conn: Connection,
    make_tenant: MakeTenant,
    add_signals: AddSignals,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Who fell most this week, first: the "7 days" header sorts ascending on its first
    click, descending on the next, those without a week-old score last both ways. Past
    FLEET_CHANGE_SORT_MAX matching dealerships the page sorts by risk and says why."""
    rising, falling, new = await three_movers(conn, make_tenant, add_signals)
    page = (await api.client.get("/dashboard/fleet", headers=api.admin)).text
    assert 'href="/dashboard/fleet?sort=change7d&amp;dir=asc' in page  # the first click
    drops = await api.client.get("/dashboard/fleet?sort=change7d", headers=api.admin)
    assert fleet_order(drops.text) == [falling, rising, new]
    assert 'aria-sort="ascending"' in drops.text
    gains = await api.client.get("/dashboard/fleet?sort=change7d&dir=desc", headers=api.admin)
    assert fleet_order(gains.text) == [rising, falling, new]

    monkeypatch.setattr(fleet_store, "FLEET_CHANGE_SORT_MAX", 2)
    refused = (await api.client.get("/dashboard/fleet?sort=change7d", headers=api.admin)).text
    assert "offered up to 2 matching dealerships, and 3 match: sorted by risk" in refused
    assert 'data-sort="change7d"' not in refused  # no longer a sort link
    assert '<input type="hidden" name="sort" value="risk">' in refused
    only_two = await api.client.get(
        "/dashboard/fleet?sort=change7d&q=ing", headers=api.admin
    )  # "Rising" and "Falling"
    assert fleet_order(only_two.text) == [falling, rising]


async def test_an_inactive_dealership_is_counted_but_left_out_of_the_mean_and_levels(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """Its score is frozen where it was made inactive: the fleet's mean counted it (the peers'
    medians did not), and the two disagreed."""
    able, closed = await make_tenant("Able Motors"), await make_tenant("Closed Motors")
    await add_signals(able, [{"days_ago": 0, "aeo": "90"}])
    await add_signals(closed, [{"days_ago": 0, "aeo": "10"}])
    await session_of(conn).scores.recompute([able, closed])
    await conn.execute("UPDATE tenants SET active = false WHERE id = %s", (closed,))
    totals = (await api.client.get("/dashboard/fleet/stats", headers=api.admin)).json()["totals"]
    assert (totals["tenants"], totals["inactive"], totals["computed"]) == (2, 1, 1)
    assert totals["meanScore"] == 36.0  # Able Motors alone
    assert sum(totals["byRisk"].values()) == 1
    page = await api.client.get("/dashboard/fleet", headers=api.admin)
    assert "inactive (left out of the mean and the risk levels)" in page.text
