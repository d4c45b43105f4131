"""The answer-engine section of the dashboard (DESIGN §14) in a real browser, against a real
`aoer up --demo`: the per-engine table, the share-of-voice chart and the most cited pages."""

import re

import pytest
from playwright.async_api import Page, expect

from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS, demo_tenant_ids
from tests.browser.conftest import Aoer, Screenshot, wait_for_demo_scores
from tests.browser.test_dashboard import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

PERCENT = re.compile(r"^\d{1,3}\.\d %$")


async def test_the_dealership_page_shows_engines_share_of_voice_and_cited_pages(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    await sign_in(page, aoer_up.login_link)
    tenant = demo_tenant_ids()[1]  # Summit Ford, Denver: signals every day
    await page.goto(f"{aoer_up.base_url}/dashboard/tenant/{tenant}")
    table = page.locator("#engines-table")
    await expect(table).to_be_visible()
    engines = await table.locator("tbody th").all_text_contents()
    # By stored name: ai_overviews, chatgpt, claude, copilot, gemini, perplexity.
    assert engines == ["AI Overviews", "ChatGPT", "Claude", "Copilot", "Gemini", "Perplexity"]
    headers = await table.locator("thead th").all_text_contents()
    assert headers == [
        "Engine",
        "Answers",
        "Visibility",
        "Citation rate",
        "Avg. position",
        "Share of voice",
        "Sentiment",
    ]
    overall = await table.locator('tfoot tr[data-engine="all"] td').all_text_contents()
    assert int(overall[0].replace(",", "")) > 1000
    assert all(PERCENT.match(cell) for cell in (overall[1], overall[2], overall[4]))
    bars = page.locator("#voice svg .voice-row")
    assert await bars.count() >= 4  # you and the city's competitors (top five)
    await expect(bars.first).to_contain_text("You")
    await expect(page.locator("#voice svg desc")).to_contain_text("Mile High Chevrolet")
    cited = page.locator("#cited ol.cited li")
    assert await cited.count() >= 3
    await expect(cited.first.locator("a")).to_have_attribute(
        "href", re.compile(r"^https://summitford\.example/")
    )
    await page.locator("#engines").scroll_into_view_if_needed()
    await screenshot(page, "engines")

    await page.goto(f"{aoer_up.base_url}/dashboard/fleet?sort=name&dir=asc")
    await expect(page.locator("#fleet-table thead")).to_contain_text("Share of voice")
    voices = await page.locator('#fleet-table [data-cell="voice"]').all_text_contents()
    assert len(voices) == len(DEMO_DEALERS)
    assert sum(1 for v in voices if PERCENT.match(v)) >= len(DEMO_DEALERS) - 2
    assert page.errors == []  # type: ignore[attr-defined]
