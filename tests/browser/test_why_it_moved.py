"""The "Why it moved" panel and the trend's model markers (DESIGN §13), in a real browser
against a real `aoer up --demo`: the split of the last change, the 7- and 30-day changes and
the recommendations, updated live when a recompute commits."""

import re
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS, demo_tenant_ids
from tests.browser.conftest import Aoer, Screenshot, wait_for_demo_scores
from tests.browser.test_dashboard import LIVE_UPDATE_MS, SCORE, change_score, sign_in
from tests.conftest import promote_a_model_three_days_ago

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]


async def score_days_ago(conn: Connection, tenant_id: object, days: int) -> Decimal:
    """The score of the latest recompute event at or before `days` days ago (the demo
    back-fills one a day)."""
    cur = await conn.execute(
        "SELECT (event_data ->> 'aoerScore')::numeric AS s FROM metrics_events"
        " WHERE tenant_id = %s AND created_at <= now() - make_interval(days => %s)"
        " ORDER BY created_at DESC LIMIT 1",
        (tenant_id, days),
    )
    row = await cur.fetchone()
    assert row is not None
    return Decimal(row["s"])


def signed(value: Decimal) -> str:
    return f"+{value:.2f}" if value > 0 else f"−{-value:.2f}" if value < 0 else "±0.00"


async def parts_of(page: Page) -> dict[str, Decimal]:
    found = await page.locator("#why g.part").evaluate_all(
        "nodes => nodes.map(n => [n.dataset.part, n.dataset.value])"
    )
    return {key: Decimal(value) for key, value in found}


async def test_why_it_moved_shows_the_split_and_updates_live(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    dealer, (name, _) = demo_tenant_ids()[0], DEMO_DEALERS[0]
    await promote_a_model_three_days_ago(conn)
    await conn.execute("SELECT aoer_refresh_component_medians()")

    await sign_in(page, aoer_up.login_link)
    await page.goto(f"{aoer_up.base_url}/dashboard/tenant/{dealer}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(name)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    # The demo's first recompute has nothing to compare with.
    await expect(page.locator("#why [data-why='headline']")).to_contain_text("No change")
    # The promotion is marked on the trend.
    await expect(page.locator("#chart .marker-model")).to_have_count(1)
    await expect(page.locator("#chart .marker-model text")).to_have_text("v2 promoted")
    before = Decimal(await page.locator(SCORE).text_content() or "")

    await change_score(aoer_up, dealer, 35.5)

    await expect(page.locator(SCORE)).to_have_text("35.50", timeout=LIVE_UPDATE_MS)
    headline = page.locator("#why [data-why='headline']")
    await expect(headline).to_contain_text(f"{before} → 35.50", timeout=LIVE_UPDATE_MS)
    delta = Decimal("35.50") - before
    await expect(page.locator("#why")).to_have_attribute("data-delta", f"{delta:.2f}")
    parts = await parts_of(page)
    assert set(parts) == {"aeo", "geo", "ugc", "volatility", "model", "rounding"}  # v1
    assert sum(parts.values(), Decimal(0)) == delta
    # The longest bar says how large the largest part is against 5 points: a move of a few
    # cents is drawn short, not as long as one of several points.
    half, longest = await page.locator("#why svg").evaluate(
        "svg => [Number(svg.querySelector('line.axis').getAttribute('x1')) - 128 - 4,"
        " Math.max(...[...svg.querySelectorAll('rect.bar')]"
        ".map(r => Number(r.getAttribute('width'))))]"
    )
    largest = max(abs(v) for v in parts.values())
    assert abs(longest / half - min(1.0, float(largest) / 5)) < 0.02, (longest, half, parts)
    assert parts["model"] == 0  # the champion did not change
    # The demo's back-filled history: a score 7 and 30 days ago.
    for days in (7, 30):
        expected = Decimal("35.50") - await score_days_ago(conn, dealer, days)
        await expect(page.locator(f"[data-why='change{days}d']")).to_have_text(signed(expected))
    # Far below its peers' medians: the weakest component, with its gain in points. The demo
    # dealership belongs to the demo dealer group (7 dealerships), so its peers are the group's.
    advice = page.locator("[data-why='recommendations'] li[data-rule='weakest_component']")
    await expect(advice).to_contain_text("organisation median (7 dealerships)")
    await expect(advice.locator(".gain")).to_have_text(re.compile(r"^\+\d+\.\d\d pts$"))
    await screenshot(page, "why-it-moved")

    # A recompute that changes nothing (a scheduled refresh, "Recompute now") keeps the
    # explanation of the fall, dated, instead of "35.50 → 35.50 (±0.00 points)".
    async with aoer_up.api() as api:
        queued = await api.post(
            "/api/aoer/queue", json={"tenantId": str(dealer), "priority": "urgent"}
        )
        assert queued.status_code == 202, queued.text
    await expect(headline).to_contain_text(
        "The recomputes since changed nothing", timeout=LIVE_UPDATE_MS
    )
    await expect(headline).to_contain_text("Last change (")
    # A local time says its zone (the console and the CLI speak UTC).
    text = await headline.text_content() or ""
    assert re.search(r"Last change \([^,]+, [^,]*\b(UTC|GMT[+\-\d:]*|[A-Z]{3,5})\b, ", text), text
    await expect(headline).to_contain_text(f"{before} → 35.50 ({signed(delta)} points)")
    await expect(page.locator("#why")).to_have_attribute("data-delta", f"{delta:.2f}")
    assert await parts_of(page) == parts
    assert page.errors == []  # type: ignore[attr-defined]
