"""Alerts in a real browser against a real `aoer up --demo`: a rule added on /dashboard/alerts
through its form, then an alert raised by a recompute appears live on the dealership page,
in the feed and on the trend chart, as a marker beside a model promotion's."""

import re

import pytest
from playwright.async_api import Page, expect

from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS, demo_tenant_ids
from tests.browser.conftest import SCREENSHOTS, Aoer, Screenshot, wait_for_demo_scores
from tests.browser.test_dashboard import sign_in
from tests.conftest import promote_a_model_three_days_ago

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

LIVE_MS = 5000
SECRET_READ_MS = 6000


async def test_a_rule_added_on_the_page_raises_an_alert_shown_live(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    await wait_for_demo_scores(conn)
    dealer, (name, _) = demo_tenant_ids()[0], DEMO_DEALERS[0]
    await promote_a_model_three_days_ago(conn)
    await sign_in(page, aoer_up.login_link)

    await page.goto(f"{aoer_up.base_url}/dashboard/alerts")
    form = page.locator("#rule-form")
    await form.get_by_label("Kind").select_option("risk_level_up")
    await expect(form.locator(".when-points")).to_be_hidden()
    # People type the dealership's name, not its id: a name not in the list is refused on
    # the page, the list's name is taken (the API answered "Input should be a valid UUID").
    await form.get_by_label("Dealership or organisation").fill("No Such Motors")
    await form.get_by_role("button", name="Add rule").click()
    await expect(form.locator(".form-status")).to_contain_text(
        "No dealership named “No Such Motors” here: pick one from the list"
    )
    await form.get_by_label("Dealership or organisation").fill(f"  {name.upper()} ")
    await form.get_by_label("E-mail addresses").fill("ops@example.com")
    async with page.expect_navigation():
        await form.get_by_role("button", name="Add rule").click()
    await expect(page.locator("#rules-table")).to_contain_text("Visibility risk rises")
    await expect(page.locator("#rules-table")).to_contain_text(name)

    # A bad rule is refused with the API's words, and nothing is added.
    await form.get_by_label("Kind").select_option("score_drop")
    await form.get_by_label("Points").fill("-3")
    await form.get_by_label("Dealership or organisation").fill(str(dealer))
    await form.get_by_role("button", name="Add rule").click()
    await expect(form.locator(".form-status")).to_contain_text("points must be positive")
    assert await page.locator("#rules-table tbody tr").count() == 1

    # A webhook endpoint: its signing secret stays on screen until its reader says it is
    # copied (it once vanished with a reload 4 s later), then the list shows the endpoint.
    endpoint_form = page.locator("#endpoint-form")
    await endpoint_form.get_by_label("URL").fill("https://hooks.example.com/aoer")
    await endpoint_form.get_by_role("button", name="Add endpoint").click()
    secret = page.get_by_label("The new endpoint's signing secret")
    await expect(secret).to_have_value(re.compile(r"^whsec_"))
    await page.wait_for_timeout(SECRET_READ_MS)  # the time someone takes to copy it
    await expect(secret).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "alerts-new-endpoint-secret.png", full_page=True)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Done: I have copied it").click()
    await expect(page.locator("#endpoints-table")).to_contain_text("https://hooks.example.com/aoer")
    await expect(page.locator("#new-secret")).to_be_hidden()

    await page.goto(f"{aoer_up.base_url}/dashboard/tenant/{dealer}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#alerts-empty")).to_be_visible()
    await expect(page.locator("#chart .marker-model")).to_have_count(1)
    await expect(page.locator("#chart .marker-alert")).to_have_count(0)
    # Two data points left: the risk rises to High on the next recompute.
    await conn.execute(
        "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1", (dealer,)
    )
    async with aoer_up.api() as api:
        queued = await api.post(
            "/api/aoer/queue", json={"tenantId": str(dealer), "priority": "urgent"}
        )
        assert queued.status_code == 202
    feed = page.locator("#alerts-feed li")
    await expect(feed.first).to_contain_text("Visibility risk rose", timeout=LIVE_MS)
    await expect(feed.first).to_contain_text("(High)")
    # The live alert joins the chart's one marker layer: a rule and a label beside the model's.
    chart = page.locator("#chart")
    marker = chart.locator(".marker-alert")
    await expect(marker).to_have_count(1)
    await expect(marker.locator("text")).to_have_text("Visibility risk rose")
    await expect(marker.locator("title")).to_contain_text("(High)")
    await expect(chart.locator(".marker")).to_have_count(2)
    await expect(chart.locator("svg")).to_have_attribute(
        "aria-label", re.compile(r"Marked: 1 model change, 1 alert\.")
    )
    await screenshot(page, "dealership-alert")
    # After a reload the same marker comes from the history (no second, live-only layer).
    live_title = await marker.locator("title").text_content()
    await page.reload()
    await expect(page.locator("#chart .marker")).to_have_count(2)
    await expect(page.locator("#chart .marker-alert title")).to_have_text(live_title or "")
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_failed_recompute_reads_as_its_first_sentence_in_the_feed(
    aoer_up: Aoer, conn: Connection, page: Page
) -> None:
    """A dealership's feed showed a failed recompute's error whole, PostgreSQL's diagnostics
    included ("SQLSTATE P0001; CONTEXT: PL/pgSQL function … line 3"): its first sentence now,
    the rest in the line's tooltip (and whole on the job's page)."""
    await wait_for_demo_scores(conn)
    dealer = demo_tenant_ids()[1]
    error = (
        "poisoned tenant (SQLSTATE P0001; CONTEXT: PL/pgSQL function refuse_poison() line 3"
        " at RAISE)"
    )
    await conn.execute(
        "INSERT INTO alerts (tenant_id, kind, dedup_key, data)"
        " VALUES (%s, 'job_failed', 'browser', jsonb_build_object('job',"
        " jsonb_build_object('error', %s::text)))",
        (dealer, error),
    )
    await sign_in(page, aoer_up.login_link)
    await page.goto(f"{aoer_up.base_url}/dashboard/tenant/{dealer}")
    line = page.locator("#alerts-feed li").first.locator(".msg")
    await expect(line).to_have_text("poisoned tenant")
    await expect(line).to_have_attribute("title", error)
