"""An organisation user in a real browser (DESIGN §12): the link `aoer up --demo` prints for
the demo dealer group opens the fleet of its own dealerships, whose rows update live; the
API-key page creates a key (shown once) and revokes it."""

from uuid import UUID

from playwright.async_api import Page, expect

from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_ORGS
from tests.browser.conftest import Aoer, Screenshot, wait_for_demo_scores
from tests.browser.test_dashboard import LIVE_UPDATE_MS, change_score, sign_in, watch_navigations


async def test_the_demo_dealer_group_sees_its_own_fleet_and_manages_keys(
    aoer_up: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    group, rooftops = DEMO_ORGS[0]
    await wait_for_demo_scores(conn)
    assert aoer_up.org_login_link, "aoer up --demo prints the dealer group's link"
    await sign_in(page, aoer_up.org_login_link)
    await expect(page.get_by_role("heading", level=1)).to_have_text(group)
    assert await page.title() == f"{group} · Fleet · AOER"
    await expect(page.locator("#fleet-table tbody tr")).to_have_count(rooftops)
    await expect(page.locator('[data-stat="tenants"]')).to_have_text(str(rooftops))
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert await page.locator("#stat-cron").count() == 0  # the scheduler is the admins'
    await screenshot(page, "org-fleet")

    # A recompute of one of the group's dealerships lands in its row without a reload.
    row = page.locator("#fleet-table tbody tr").first
    dealer = await row.get_attribute("data-tenant-id")
    assert dealer is not None
    navigations = watch_navigations(page)
    await change_score(aoer_up, UUID(dealer), 23.45)
    await expect(row.locator('[data-cell="score"]')).to_have_text("23.45", timeout=LIVE_UPDATE_MS)
    assert navigations == []

    await page.get_by_role("link", name="API keys").click()
    await expect(page.get_by_text("No keys yet.")).to_be_visible()
    await page.get_by_label("Scope").select_option("org")
    await page.get_by_label("Name").fill("nightly import")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Create key").click()
    key = await page.get_by_label("The new API key").input_value()
    assert key.startswith("aoer_")
    await expect(page.locator("table.keys tbody tr")).to_have_count(1)
    await screenshot(page, "keys")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Revoke key").click()
    await expect(page.get_by_text("revoked: refused everywhere")).to_be_visible()
    await expect(page.locator("table.keys tbody tr .tag")).to_have_text("revoked")
    assert not page.errors  # type: ignore[attr-defined]
