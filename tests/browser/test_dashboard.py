"""The live dashboard in a real browser, against a real `aoer up --demo` (API + worker)."""

import re
import time
from datetime import timedelta
from uuid import UUID

import pytest
from playwright.async_api import BrowserContext, Page, expect

from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS, demo_tenant_ids
from tests.browser.conftest import Aoer, Screenshot, wait_for_demo_scores
from tests.conftest import utc_today

# Each test starts a real `aoer up --demo` and a browser: slow, with a timeout to match.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

LIVE_UPDATE_MS = 2000  # the bound: a committed recompute shows on the page within it
RECONNECT_MS = 20_000  # backoff tops out at 10 s between attempts
SCORE = '[data-bind="aoerScore"]'


async def add_history(conn: Connection, tenant_id: UUID) -> None:
    """Ninety days of earlier recomputes (every 6 h), so the trend chart has a shape."""
    await conn.execute(
        "INSERT INTO metrics_events (tenant_id, event_type, event_data, created_at)"
        " SELECT %(t)s, 'aoer_recompute', jsonb_build_object("
        "   'aoerScore', round((62 + 7 * sin(h / 23.0) - h / 40.0)::numeric, 2),"
        "   'visibilityRisk', 0.20, 'priority', 'low'),"
        "   now() - make_interval(hours => 6 * h)"
        " FROM generate_series(1, 360) AS h",
        {"t": tenant_id},
    )


def flat_month(tenant_id: UUID, value: float) -> list[dict[str, object]]:
    """Signals for every day of the 30-day window at one value: the score becomes `value`."""
    today = utc_today()
    return [
        {
            "dealerId": str(tenant_id),
            "date": (today - timedelta(days=d)).isoformat(),
            "aeo": value,
            "geo": value,
            "ugc": value,
        }
        for d in range(31)
    ]


async def change_score(aoer: Aoer, tenant_id: UUID, value: float) -> float:
    """New signals, then an urgent recompute, through the API; returns when it was queued."""
    async with aoer.api() as api:
        sent = await api.post(
            "/api/signals", json={"signals": flat_month(tenant_id, value), "enqueue": False}
        )
        assert sent.status_code == 200, sent.text
        queued_at = time.perf_counter()
        queued = await api.post(
            "/api/aoer/queue", json={"tenantId": str(tenant_id), "priority": "urgent"}
        )
        assert queued.status_code == 202, queued.text
    return queued_at


async def sign_in(page: Page, link: str) -> None:
    """Open the link, then press its Sign in button (opening it alone signs nothing in)."""
    response = await page.goto(link)
    assert response is not None
    assert response.ok, await page.content()
    assert not [c for c in await page.context.cookies() if c["name"] == "aoer_session"]
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    assert "/dashboard" in page.url, await page.content()


def watch_navigations(page: Page) -> list[str]:
    """Every main-frame navigation from now on (a reload would show up here)."""
    seen: list[str] = []
    page.on("framenavigated", lambda frame: seen.append(frame.url))
    return seen


async def test_login_link_then_score_tile_updates_live_without_reload(
    aoer_up: Aoer, conn: Connection, page: Page, context: BrowserContext, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    dealer, (name, _) = demo_tenant_ids()[0], DEMO_DEALERS[0]
    await add_history(conn, dealer)

    # The one-time link `aoer up` printed signs in as admin (HttpOnly cookie), on to the fleet.
    await sign_in(page, aoer_up.login_link)
    assert page.url == f"{aoer_up.base_url}/dashboard/fleet"
    session = [c for c in await context.cookies() if c["name"] == "aoer_session"]
    assert [(c["httpOnly"], c["sameSite"]) for c in session] == [(True, "Lax")]
    await page.get_by_role("link", name=name).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(name)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    before = await page.locator(SCORE).text_content()
    navigations = watch_navigations(page)
    await page.evaluate("window.__sameDocument = 'still here'")

    queued_at = await change_score(aoer_up, dealer, 91.25)

    await expect(page.locator(SCORE)).to_have_text("91.25", timeout=LIVE_UPDATE_MS)
    print(f"score tile updated {(time.perf_counter() - queued_at) * 1000:.0f} ms after the enqueue")
    assert before != "91.25"
    await expect(page.locator('[data-bind="grade"]')).to_have_text("Excellent")
    await expect(page.locator('[data-bind="riskLevel"]')).to_have_text("Low")
    await expect(page.locator('[data-bind="dataPoints"]')).to_have_text("31")
    await expect(page.locator("#tile-aoerScore .changed-mark")).to_have_text("updated")
    await expect(page.locator("#events li").first).to_contain_text("91.25")
    await screenshot(page, "dealership")

    # The chart: the new point is the last one, hover reads it out, 90 days holds more.
    chart = page.locator("#chart svg")
    await chart.scroll_into_view_if_needed()  # below the "Why it moved" panel
    box = await chart.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] - 72, box["y"] + box["height"] / 2)
    await expect(page.locator("#chart .tip")).to_have_attribute("visibility", "visible")
    await expect(page.locator("#chart-readout")).to_contain_text("score 91.25 (Excellent)")
    count_30 = int(
        re.findall(r"(\d+) recomputes", await chart.get_attribute("aria-label") or "")[0]
    )
    await page.get_by_role("button", name="90 days").click()
    await expect(page.get_by_role("button", name="90 days")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(chart).to_have_attribute("aria-label", re.compile(r"over 90 days"))
    count_90 = int(
        re.findall(r"(\d+) recomputes", await chart.get_attribute("aria-label") or "")[0]
    )
    assert count_90 > count_30 > 100

    # "Recompute now" queues an urgent job with the session cookie and reports the result.
    await page.get_by_role("button", name="Recompute now").click()
    await expect(page.locator("#recompute-status")).to_contain_text("Done", timeout=LIVE_UPDATE_MS)
    await expect(page.get_by_role("button", name="Recompute now")).to_be_enabled()

    assert await page.evaluate("window.__sameDocument") == "still here"
    assert navigations == []
    assert page.errors == []  # type: ignore[attr-defined]

    # The link worked once: another browser cannot sign in with it again.
    assert context.browser is not None
    other = await context.browser.new_context()
    again = await (await other.new_page()).goto(aoer_up.login_link)
    assert again is not None
    assert again.status == 401
    await other.close()


async def test_fleet_view_sorts_by_risk(
    aoer_up_with_cron: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    aoer = aoer_up_with_cron
    await wait_for_demo_scores(conn)
    async with aoer.api() as api:
        created = await api.post("/api/tenants", json={"name": "Aardvark Autos (no signals)"})
        assert created.status_code == 201, created.text
        await api.post("/api/aoer/queue", json={"tenantId": created.json()["id"]})
        # inactive: the scheduler never queues it, so it stays never computed
        fresh = await api.post("/api/tenants", json={"name": "Zenith Motors", "active": False})
        assert fresh.status_code == 201, fresh.text
    await sign_in(page, aoer.login_link)
    await expect(page.get_by_text("Aardvark Autos (no signals)")).to_be_visible()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator('[data-stat="nextTick"]')).to_have_text(re.compile(r"^in "))

    await page.goto(f"{aoer.base_url}/dashboard/fleet?sort=name&dir=asc")
    names = await page.locator("#fleet-table tbody td.name a").all_text_contents()
    assert names == sorted(names, key=str.lower)
    assert len(names) == len(DEMO_DEALERS) + 2

    async def risks() -> list[float | str | None]:
        cells = await page.locator('#fleet-table [data-cell="risk"]').all_text_contents()
        return [
            None if c.strip() == "—" else "no data" if c.strip() == "no data" else float(c)
            for c in cells
        ]

    await page.get_by_role("link", name="Risk").click()
    await expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    assert "sort=risk" in page.url
    values = await risks()
    computed = [v for v in values if isinstance(v, float)]
    assert computed == sorted(computed, reverse=True)
    assert len(set(computed)) >= 3  # the demo spans several risk levels
    # No signals: "no data" (not Critical), after every dealership with data; never
    # computed last.
    assert values[-2:] == ["no data", None]
    last_two = page.locator("#fleet-table tbody tr")
    await expect(last_two.nth(len(values) - 2)).to_contain_text("No data")
    await screenshot(page, "fleet")

    await page.get_by_role("link", name="Risk").click()
    await expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    values = await risks()
    computed = [v for v in values if isinstance(v, float)]
    assert computed == sorted(computed)
    assert values[-2:] == ["no data", None]

    # Filtering by level keeps the chosen sort and shows only that level.
    await page.get_by_label("Risk").select_option("High")
    await page.get_by_role("button", name="Filter").click()
    assert "sort=risk" in page.url
    levels = await page.locator('#fleet-table [data-cell="level"]').all_text_contents()
    assert levels
    assert set(levels) == {"High"}
    assert page.errors == []  # type: ignore[attr-defined]


async def test_fleet_rows_and_queue_depth_update_live(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    dealer, (name, _) = demo_tenant_ids()[3], DEMO_DEALERS[3]
    await sign_in(page, aoer_up.login_link)
    await page.goto(f"{aoer_up.base_url}/dashboard/fleet?sort=name&dir=asc")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = page.locator(f'#fleet-table tr[data-tenant-id="{dealer}"]')
    await expect(row).to_contain_text(name)
    urgent_done = page.locator('[data-depth="completed.urgent"]')
    await expect(urgent_done).to_have_text("0")
    navigations = watch_navigations(page)

    await change_score(aoer_up, dealer, 12.34)

    await expect(row.locator('[data-cell="score"]')).to_have_text("12.34", timeout=LIVE_UPDATE_MS)
    await expect(row.locator('[data-cell="grade"]')).to_have_text("Poor")
    await expect(page.locator("#resort")).to_be_visible()
    await expect(urgent_done).to_have_text("1", timeout=LIVE_UPDATE_MS)
    await screenshot(page)
    assert navigations == []
    assert page.errors == []  # type: ignore[attr-defined]


async def test_dropped_stream_shows_reconnecting_and_recovers(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    dealer = demo_tenant_ids()[2]
    await sign_in(page, aoer_up.login_link_for(dealer))
    status = page.locator("#conn")
    await expect(status).to_have_attribute("data-state", "live")
    navigations = watch_navigations(page)

    await aoer_up.stop()
    await expect(status).to_have_text("Reconnecting…")
    await expect(page.locator("#banner")).to_contain_text("cannot reach the API")
    await screenshot(page)

    await aoer_up.start()  # same port, database and secret: the session cookie still holds
    await expect(status).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
    await expect(page.locator("#banner")).to_be_hidden()
    await change_score(aoer_up, dealer, 55.55)
    await expect(page.locator(SCORE)).to_have_text("55.55", timeout=LIVE_UPDATE_MS)
    assert navigations == []
    assert page.errors == []  # type: ignore[attr-defined]


async def test_tenant_user_cannot_open_another_dealership(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    own, other = demo_tenant_ids()[0], demo_tenant_ids()[1]
    own_name, other_name = DEMO_DEALERS[0][0], DEMO_DEALERS[1][0]
    cur = await conn.execute(
        "SELECT aoer_score::text AS s FROM aoer_summary WHERE tenant_id = %s", (other,)
    )
    row = await cur.fetchone()
    assert row is not None
    other_score = str(row["s"])

    await sign_in(page, aoer_up.login_link_for(own))
    assert page.url == f"{aoer_up.base_url}/dashboard/tenant/{own}"
    await expect(page.get_by_role("heading", level=1)).to_have_text(own_name)
    assert "Fleet" not in await page.locator("header").inner_text()

    response = await page.goto(f"{aoer_up.base_url}/dashboard/tenant/{other}")
    assert response is not None
    assert response.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "You do not have access to this page"
    )
    html = await page.content()
    assert other_name not in html
    assert other_score not in html
    await screenshot(page)

    fleet = await page.goto(f"{aoer_up.base_url}/dashboard/fleet")
    assert fleet is not None
    assert fleet.status == 403
    assert other_name not in await page.content()
    # The JSON behind the pages refuses too, with the browser's own session cookie.
    statuses = await page.evaluate(
        """async (id) => Promise.all([
            fetch(`/api/aoer/summary?tenantId=${id}`).then((r) => r.status),
            fetch(`/api/aoer/history?tenantId=${id}`).then((r) => r.status),
            fetch(`/api/aoer/stream?tenantId=${id}`).then((r) => r.status),
            fetch("/api/aoer/stream").then((r) => r.status),
            fetch("/dashboard/fleet/stats").then((r) => r.status),
        ])""",
        str(other),
    )
    assert statuses == [403, 403, 403, 403, 403]

    # Signing out ends the session: the dashboard asks to sign in again.
    await page.goto(f"{aoer_up.base_url}/dashboard")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
    again = await page.goto(f"{aoer_up.base_url}/dashboard/tenant/{own}")
    assert again is not None
    assert again.status == 401
