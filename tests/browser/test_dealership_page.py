"""The dealership page as a newcomer met it (issue 12): what it says after a later recompute,
where the "updated" chip sits, what its risk badges, data points and trend chart show, the
tiles the v2 model adds, no-data dealerships, and signing out."""

import re

import pytest
from playwright.async_api import Page, expect

from aoer.constants import SUMMARY_CHANNEL
from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS, demo_tenant_ids
from tests.browser.conftest import Aoer, Screenshot, wait_for_demo_scores
from tests.browser.test_dashboard import LIVE_UPDATE_MS, SCORE, change_score, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

SPARSE_DEALER = 5  # every 6th demo dealer sends a signal every 8th day: early days had none


async def open_dealership(page: Page, aoer: Aoer, index: int) -> None:
    await page.goto(f"{aoer.base_url}/dashboard/tenant/{demo_tenant_ids()[index]}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(DEMO_DEALERS[index][0])
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")


async def test_a_later_recompute_resets_the_button_label_and_keeps_the_tile_still(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    dealer = demo_tenant_ids()[0]
    await sign_in(page, aoer_up.login_link)
    await open_dealership(page, aoer_up, 0)

    await page.get_by_role("button", name="Recompute now").click()
    status = page.locator("#recompute-status")
    await expect(status).to_contain_text("Done", timeout=LIVE_UPDATE_MS)
    done_score = await page.locator(SCORE).text_content()
    assert done_score is not None
    assert f"score {done_score}" in (await status.text_content() or "")
    value = page.locator(SCORE)
    still = await value.bounding_box()
    assert still is not None

    await change_score(aoer_up, dealer, 56.14)  # a later recompute, not from this button

    await expect(value).to_have_text("56.14", timeout=LIVE_UPDATE_MS)
    chip = page.locator("#tile-aoerScore .changed-mark")
    await expect(chip).to_have_text("updated")
    moved = await value.bounding_box()
    assert moved is not None
    assert abs(moved["y"] - still["y"]) < 1, "the chip must not push the value down"
    assert abs(moved["x"] - still["x"]) < 1
    await expect(status).to_have_text("")  # no "Done…: score 55.49" beside a 56.14 tile
    # The live row says what started it, like the rows the server rendered: in words (a bare
    # "low" beside the risk read as a risk level), the job's priority on hover.
    newest = page.locator("#events li").first
    await expect(newest).to_contain_text("56.14")
    await expect(newest.locator(".tag")).to_have_text("requested")
    await expect(newest.locator(".tag")).to_have_attribute("title", "job priority: urgent")
    rendered = page.locator("#events li").nth(1)
    await expect(rendered.locator(".tag")).to_have_count(1)
    await expect(rendered.locator(".tag")).to_have_text(re.compile(r"^(background|requested)$"))
    await screenshot(page)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_risk_badges_data_points_and_the_trend_chart_say_what_they_mean(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    await sign_in(page, aoer_up.login_link)
    await open_dealership(page, aoer_up, SPARSE_DEALER)

    # Risk: the level's word alone as text, and a dot drawn by CSS, not a font glyph.
    risk = page.locator('[data-bind="riskLevel"]')
    assert await risk.inner_text() in ("Low", "Medium", "High", "Critical")
    dot = await risk.evaluate(
        "n => { const s = getComputedStyle(n, '::before');"
        " return [s.content, s.width, s.borderRadius]; }"
    )
    assert dot[0] == '""', "no glyph that renders as '_' or '▬'"
    assert float(dot[1].removesuffix("px")) > 4
    assert dot[2] == "50%"

    points = page.locator("#tile-dataPoints")
    await expect(points.locator(".detail")).to_have_text(
        "days with an AEO value in the last 30 days"
    )
    assert "chart shows recomputes" in (await points.get_attribute("title") or "")

    # 90 days: the early recomputes had no signal in their window; gaps, never points at 0.
    await page.get_by_role("button", name="90 days").click()
    chart = page.locator("#chart svg")
    await expect(chart).to_have_attribute("aria-label", re.compile("over 90 days"))
    await expect(page.locator("#chart .gap-mark").first).to_be_attached()
    scores = [
        float(s)
        for s in await chart.locator("circle.dot").evaluate_all(
            "dots => dots.map(d => d.dataset.score)"
        )
    ]
    assert scores
    assert min(scores) > 0, "no fake zero points"
    labels = await chart.locator("text.label").all_inner_texts()
    if min(scores) >= 15:
        assert "0" not in labels, f"the y axis need not start at 0 for {min(scores)}: {labels}"
    await screenshot(page)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_seo_and_local_tiles_show_when_the_model_weighs_them(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    dealer = demo_tenant_ids()[0]
    await sign_in(page, aoer_up.login_link)
    await open_dealership(page, aoer_up, 0)
    await expect(page.locator("#tile-avgSEO")).to_be_hidden()  # v1 weighs AEO, GEO, UGC only

    # A summary as the v2 model writes it (DESIGN §9), pushed live as a worker would.
    await conn.execute(
        "UPDATE aoer_summary SET last_updated = now(),"
        ' metrics = metrics || \'{"avgSEO": 71.5, "avgGeolocal": 44.25}\'::jsonb'
        " WHERE tenant_id = %s",
        (dealer,),
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (SUMMARY_CHANNEL, str(dealer)))

    await expect(page.locator('[data-bind="avgSEO"]')).to_have_text("71.50", timeout=LIVE_UPDATE_MS)
    await expect(page.locator('[data-bind="avgGeolocal"]')).to_have_text("44.25")
    await page.reload()
    await expect(page.locator("#tile-avgSEO")).to_be_visible()
    await expect(page.locator('[data-bind="avgGeolocal"]')).to_have_text("44.25")
    await screenshot(page)


async def test_a_dealership_without_data_says_no_data_and_every_page_signs_out(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    async with aoer_up.api() as api:
        created = await api.post("/api/tenants", json={"name": "Empty Lot Motors"})
        assert created.status_code == 201, created.text
        empty = created.json()["id"]
        queued = await api.post("/api/aoer/queue", json={"tenantId": empty, "priority": "high"})
        assert queued.status_code == 202
    await sign_in(page, aoer_up.login_link)
    await page.goto(f"{aoer_up.base_url}/dashboard/tenant/{empty}")
    await expect(page.locator(SCORE)).to_have_text("no data", timeout=10_000)
    await expect(page.locator('[data-bind="visibilityRisk"]')).to_have_text("no data")
    await expect(page.locator('[data-bind="grade"]')).to_have_text("No data")
    await expect(page.locator('[data-bind="riskLevel"]')).to_have_text("No data")
    await screenshot(page)

    for path in ("/dashboard/fleet", f"/dashboard/tenant/{empty}"):
        await page.goto(aoer_up.base_url + path)
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    row = page.locator(f'#fleet-table tr[data-tenant-id="{empty}"]')
    await page.goto(f"{aoer_up.base_url}/dashboard/fleet")
    await expect(row.locator('[data-cell="score"]')).to_have_text("no data")
    await expect(row.locator('[data-cell="grade"]')).to_have_text("No data")

    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
    again = await page.goto(f"{aoer_up.base_url}/dashboard/fleet")
    assert again is not None
    assert again.status == 401
    assert page.errors == []  # type: ignore[attr-defined]
