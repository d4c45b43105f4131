"""Drive the real dashboard in Debian's headless Chromium against a real `aoer up --demo`.

Each test gets its own database and its own `aoer up --demo` process (API + worker in one,
as an operator runs it), signs in through the one-time link that process prints (opening it,
then pressing its Sign in button), and saves screenshots under `test-output/screenshots/`.
With `AOER_UPDATE_SCREENSHOTS=1` (`make screenshots`) the README's screenshots in
`docs/screenshots/` are rewritten too. Under `CI=true` a missing Chromium fails the tests
instead of skipping them.
"""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from aoer.api.auth import LOGIN_PURPOSE, TokenService
from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS
from tests.conftest import IN_CI, REPO

CHROMIUM = os.environ.get("AOER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JWT_SECRET = "browser-test-secret-0123456789abcdef-0123456789"
SCREENSHOTS = REPO / "test-output" / "screenshots"
README_SCREENSHOTS = REPO / "docs" / "screenshots"
UPDATE_README = os.environ.get("AOER_UPDATE_SCREENSHOTS", "") in ("1", "true", "yes")
LAPTOP = {"width": 1280, "height": 820}
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
LINK = re.compile(r"(http://\S+)/login\?token=(\S+)")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        message = (
            f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium; "
            "never a downloaded browser)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) at laptop size."""
    ctx = await browser.new_context(viewport=LAPTOP, locale="en-US", timezone_id="UTC")
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    """A tab that fails the test on any script error in the dashboard."""
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors  # type: ignore[attr-defined]
    return tab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]


class Aoer:
    """`aoer up --demo` (API + worker + scheduler) on one database and one port.

    `start` runs it and reads the one-time login link it prints; `stop` sends SIGTERM, as an
    operator would; a restart keeps the port, the database and the JWT secret, so a browser
    that was signed in stays signed in.
    """

    def __init__(
        self, db_url: str, home: Path, *, cron: bool = False, env: dict[str, str] | None = None
    ) -> None:
        self.db_url = db_url
        self.home = home
        self.cron = cron
        self.env = env or {}  # settings of this test's own (AOER_MAX_RETRIES=1, ...)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.tokens = TokenService(JWT_SECRET)
        self.process: subprocess.Popen[str] | None = None
        self.log = home / "aoer-up.log"
        self.login_link = ""
        self.org_login_link = ""  # `--demo`: the dealer group's link, printed before the admin's

    def _spawn(self) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AOER_", "DATABASE_URL"))}
        env.update(
            {
                "DATABASE_URL": self.db_url,
                "AOER_HOME": str(self.home),
                "AOER_PORT": str(self.port),
                "AOER_JWT_SECRET": JWT_SECRET,
                "AOER_RUN_CRON": "true" if self.cron else "false",
                "PYTHONUNBUFFERED": "1",
                **self.env,
            }
        )
        self.home.mkdir(parents=True, exist_ok=True)
        self.log = self.home / f"aoer-up-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                [sys.executable, "-m", "aoer", "up", "--demo"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=self.home,
            )

    async def start(self) -> None:
        """Run `aoer up --demo` and wait for the login link it prints once it serves."""
        self.process = self._spawn()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            # The admin link is the last one printed (`--demo` prints an organisation's first).
            links = list(LINK.finditer(tail(self.log, 1_000_000)))
            found = links[-1] if links else None
            if found:
                assert found[1] == self.base_url, found[0]
                self.login_link = found[0]
                self.org_login_link = links[0][0] if len(links) > 1 else ""
                return
            if self.process.poll() is not None:
                pytest.fail(f"aoer up exited with {self.process.returncode}:\n{tail(self.log)}")
            await asyncio.sleep(0.05)
        pytest.fail(f"aoer up printed no login link in {START_TIMEOUT_S}s:\n{tail(self.log)}")

    async def stop(self) -> None:
        """SIGTERM, and wait for the exit (killed if it hangs)."""
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def bearer(self, role: str = "admin", tenant: UUID | None = None) -> dict[str, str]:
        token = self.tokens.mint("tenant" if tenant else role, tenant_id=tenant)
        return {"Authorization": f"Bearer {token}"}

    def login_link_for(self, tenant: UUID) -> str:
        """A one-time link for a tenant user, as an admin would hand it out."""
        token = self.tokens.mint(
            "tenant", tenant_id=tenant, ttl=timedelta(minutes=15), purpose=LOGIN_PURPOSE
        )
        return f"{self.base_url}/login?token={token}"

    def api(self) -> httpx.AsyncClient:
        """An admin client of the running API."""
        return httpx.AsyncClient(base_url=self.base_url, headers=self.bearer(), timeout=10)


@pytest.fixture
async def aoer_up(db_url: str, tmp_path: Path) -> AsyncIterator[Aoer]:
    """`aoer up --demo` on this test's database (scheduler off), stopped after the test."""
    running = Aoer(db_url, tmp_path / "home")
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def aoer_up_with_cron(db_url: str, tmp_path: Path) -> AsyncIterator[Aoer]:
    """The same with the in-worker scheduler on (it fires its latest tick at start)."""
    running = Aoer(db_url, tmp_path / "home", cron=True)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def wait_for_demo_scores(conn: Connection, timeout_s: float = 30.0) -> None:
    """Until the worker of `aoer up --demo` has computed every demo dealership."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cur = await conn.execute("SELECT count(*) AS n FROM aoer_summary")
        row = await cur.fetchone()
        if row and int(row["n"]) >= len(DEMO_DEALERS):  # type: ignore[call-overload]
            return
        await asyncio.sleep(0.05)
    pytest.fail("the demo dealerships were never computed")


Screenshot = Callable[..., Awaitable[Path]]


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """`await screenshot(page, readme_name=None)`: save under test-output (and docs)."""

    async def take(page: Page, readme_name: str | None = None, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}.png"
        await page.screenshot(path=path, full_page=full_page)
        if readme_name and UPDATE_README:
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(
                path=README_SCREENSHOTS / f"{readme_name}.png", full_page=full_page
            )
        return path

    return take
