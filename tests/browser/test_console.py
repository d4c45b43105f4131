"""The operator console in a real browser against a real `aoer up --demo`: a job that failed
is retried from its page and completes; the queue is paused from the page, a job enqueued
meanwhile is not claimed, and completes once the queue is resumed from the page."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest
from playwright.async_api import Dialog, Page, expect

from aoer.db.pool import Connection
from aoer.scoring.demo import demo_tenant_ids
from tests.browser.conftest import Aoer, Screenshot, wait_for_demo_scores
from tests.browser.test_dashboard import sign_in
from tests.conftest import eventually

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

DONE_MS = 15_000  # a retried or resumed job shows as completed within this
QUIET_S = 3.0  # while paused, nothing may be claimed for this long


@pytest.fixture
async def aoer_one_attempt(db_url: str, tmp_path: Path) -> AsyncIterator[Aoer]:
    """`aoer up --demo` whose jobs get one attempt each, so a failure ends `failed` at once."""
    running = Aoer(db_url, tmp_path / "home", env={"AOER_MAX_RETRIES": "1"})
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def status_of(conn: Connection, job_id: str) -> str:
    cur = await conn.execute("SELECT status FROM aoer_queue WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    assert row is not None
    return str(row["status"])


async def enqueue(aoer: Aoer, tenant: UUID) -> str:
    async with aoer.api() as api:
        queued = await api.post("/api/aoer/queue", json={"tenantId": str(tenant)})
        assert queued.status_code == 202, queued.text
        return str(queued.json()["jobId"])


async def test_retry_a_failed_job_and_pause_resume_from_the_console(
    aoer_one_attempt: Aoer, conn: Connection, page: Page, screenshot: Screenshot
) -> None:
    aoer = aoer_one_attempt
    await wait_for_demo_scores(conn)
    poisoned, other, third = demo_tenant_ids()[:3]
    await conn.execute(
        f"""
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.tenant_id = '{poisoned}' THEN RAISE EXCEPTION 'poisoned tenant'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON aoer_summary
            FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """  # type: ignore[arg-type]
    )
    failed = await enqueue(aoer, poisoned)

    async def has_failed() -> bool:
        return await status_of(conn, failed) == "failed"

    await eventually(has_failed, "the poisoned job failed", 15)
    await conn.execute("DROP TRIGGER refuse_poison ON aoer_summary")

    await sign_in(page, aoer.login_link)
    await page.get_by_role("link", name="Jobs", exact=True).click()
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Filter").click()
    row = page.locator(f'#jobs-table tr[data-job-id="{failed}"]')
    await expect(row).to_contain_text("poisoned tenant")
    await row.get_by_role("link").first.click()
    await expect(page.locator("#attempts")).to_contain_text("poisoned tenant")
    await screenshot(page, "job")
    await page.get_by_role("button", name="Retry").click()
    await expect(page.locator("#notice")).to_contain_text("queued again")
    await expect(page.locator("#job-status")).to_have_text("completed", timeout=DONE_MS)

    # Pause from the page: a job queued now is not claimed until the queue is resumed. It
    # stops the whole fleet, so the page asks first: declined, nothing is paused.
    await page.get_by_role("link", name="Jobs", exact=True).click()
    asked: list[str] = []

    async def answer(dialog: Dialog, accept: bool) -> None:
        asked.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    page.once("dialog", lambda d: answer(d, False))
    await page.get_by_role("button", name="Pause queue").click()
    await eventually(lambda: len(asked) == 1, "the page to ask before pausing")
    assert asked[0].startswith("Pause the queue? Every worker stops claiming"), asked
    await expect(page.locator("#queue-state")).to_contain_text("running")
    async with aoer.api() as api:
        assert (await api.get("/api/queue/state")).json()["paused"] is False, "declined: not paused"
    page.once("dialog", lambda d: answer(d, True))
    await page.get_by_role("button", name="Pause queue").click()
    await expect(page.locator("#queue-state")).to_contain_text("paused")
    waiting = await enqueue(aoer, other)
    deadline = asyncio.get_running_loop().time() + QUIET_S
    while asyncio.get_running_loop().time() < deadline:
        assert await status_of(conn, waiting) == "queued", "claimed while paused"
        await asyncio.sleep(0.1)
    await page.goto(f"{aoer.base_url}/dashboard/jobs/{waiting}")
    await expect(page.locator("#job-status")).to_have_text("queued")
    await expect(page.get_by_text("The queue is paused.")).to_be_visible()
    # Cancelling a waiting job asks first too (it is removed), then removes it.
    cancelled = await enqueue(aoer, third)
    await page.goto(f"{aoer.base_url}/dashboard/jobs/{cancelled}")
    page.once("dialog", lambda d: answer(d, True))
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#notice")).to_contain_text("Job cancelled.")
    assert asked[-1].startswith("Cancel this job? It is removed from the queue"), asked
    cur = await conn.execute("SELECT count(*) AS n FROM aoer_queue WHERE id = %s", (cancelled,))
    assert (await cur.fetchone() or {})["n"] == 0
    await page.get_by_role("link", name="Jobs", exact=True).click()
    await expect(page.locator("#workers")).to_contain_text("paused")
    await screenshot(page, "jobs")
    await page.get_by_role("button", name="Resume queue").click()
    await expect(page.locator("#queue-state")).to_contain_text("running")
    await page.goto(f"{aoer.base_url}/dashboard/jobs/{waiting}")
    await expect(page.locator("#job-status")).to_have_text("completed", timeout=DONE_MS)
    assert page.errors == []  # type: ignore[attr-defined]
