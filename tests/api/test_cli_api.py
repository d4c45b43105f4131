"""`aoer token` and `aoer up` as an operator runs them: minted tokens verify, `aoer up` makes
its secrets once (0600) and reuses them, and its login link signs a browser in, once (also
after a restart)."""

import re
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from aoer.api.auth import SESSION_COOKIE, TokenService
from aoer.db.pool import Connection
from tests.acceptance.conftest import cli_command, cli_env
from tests.api.conftest import JWT_SECRET
from tests.conftest import MakeTenant

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
START_S = 60.0
LINK = re.compile(r"(http://\S+)/login\?token=(\S+)")


def run_cli(db_url: str, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        env=cli_env(db_url, AOER_HOME=str(home), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_token_mints_verifiable_admin_service_and_tenant_tokens(
    db_url: str, tmp_path: Path, make_tenant: MakeTenant, conn: Connection
) -> None:
    tokens = TokenService(JWT_SECRET)
    for role, article in (("admin", "an"), ("service", "a")):
        done = run_cli(db_url, tmp_path, "token", "--role", role, AOER_JWT_SECRET=JWT_SECRET)
        assert done.returncode == 0, done.stderr
        assert tokens.verify(done.stdout.strip()).role == role
        minted = f"minted {article} {role} token, valid for 24 hours"
        assert minted in done.stderr, "minting is logged, on stderr"
    tenant = await make_tenant("Token Motors")
    done = run_cli(
        db_url, tmp_path, "token", "--tenant", str(tenant), "--ttl", "15m",
        AOER_JWT_SECRET=JWT_SECRET,
    )  # fmt: skip
    principal = tokens.verify(done.stdout.strip())
    assert (principal.role, principal.tenant_id) == ("tenant", tenant)
    left = (principal.expires_at - datetime.now(UTC)).total_seconds()
    assert 890 < left <= 900
    cur = await conn.execute(
        "SELECT action, tenant_id, details ->> 'role' AS role FROM audit_log ORDER BY id"
    )
    assert await cur.fetchall() == [
        {"action": "token.mint", "tenant_id": None, "role": "admin"},
        {"action": "token.mint", "tenant_id": None, "role": "service"},
        {"action": "token.mint", "tenant_id": tenant, "role": "tenant"},
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("token",), "give --role admin, --role service, --org ORG_ID or --tenant TENANT_ID"),
        (("token", "--role", "root"), "give --role admin, --role service"),
        (("token", "--tenant", "nope"), "malformed tenant id 'nope'"),
        (("token", "--role", "admin", "--ttl", "soon"), "invalid --ttl 'soon'"),
        (("token", "--role", "admin", "--tenant", str(uuid4())), "leave out --role"),
        (("token", "--tenant", str(uuid4())), "unknown tenant"),
        (("token", "--org", str(uuid4())), "unknown organisation"),
        (("token", "--org", "nope"), "malformed organisation id 'nope'"),
    ],
)
def test_token_refuses_bad_arguments(
    db_url: str, tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    done = run_cli(db_url, tmp_path, *args, AOER_JWT_SECRET=JWT_SECRET)
    assert done.returncode == 1
    assert words in done.stderr
    assert done.stdout == ""


def test_token_without_any_secret_says_where_to_get_one(db_url: str, tmp_path: Path) -> None:
    done = run_cli(db_url, tmp_path / "empty-home", "token", "--role", "admin")
    assert done.returncode == 1
    assert "no AOER_JWT_SECRET" in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_up(db_url: str, home: Path, log: Path) -> subprocess.Popen[str]:
    env = cli_env(db_url, AOER_HOME=str(home), AOER_PORT=str(_free_port()))
    return subprocess.Popen(
        cli_command("up"), env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True
    )


def _login_link(process: subprocess.Popen[str], log: Path) -> tuple[str, str]:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        links = list(LINK.finditer(log.read_text()))  # the admin link is printed last
        found = links[-1] if links else None
        if found:
            return found[1], found[2]
        if process.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"aoer up printed no login link:\n{log.read_text()}")


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


def test_up_generates_secrets_once_and_prints_a_one_time_login_link(
    db_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    first = _start_up(db_url, home, tmp_path / "up1.log")
    try:
        base, token = _login_link(first, tmp_path / "up1.log")
        for name in ("jwt_secret", "cron_secret"):
            assert (home / name).stat().st_mode & 0o777 == 0o600, name
        with httpx.Client(base_url=base) as browser:
            shown = browser.get("/login", params={"token": token})
            assert shown.status_code == 200, "the link shows a Sign in button"
            assert not browser.cookies.get(SESSION_COOKIE)
            button = {"token": token}
            same_origin = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
            login = browser.post("/login", data=button, headers=same_origin)
            assert login.status_code == 303
            assert login.headers["location"] == "/dashboard"
            assert browser.cookies.get(SESSION_COOKIE)
            assert browser.get("/api/tenants").status_code == 200, "the cookie signs in"
            assert browser.post("/login", data=button, headers=same_origin).status_code == 401
        minted = run_cli(db_url, home, "token", "--role", "admin").stdout.strip()
        headers = {"Authorization": f"Bearer {minted}"}
        assert httpx.get(f"{base}/api/tenants", headers=headers).status_code == 200
        assert httpx.get(f"{base}/api/tenants").status_code == 401, "no unauthenticated default"
        cron = (home / "cron_secret").read_text().strip()
        triggered = httpx.get(f"{base}/api/aoer/cron", headers={"Authorization": f"Bearer {cron}"})
        assert triggered.json() == {"success": True, "queued": 0}
    finally:
        assert _stop(first) == 0
    secret = (home / "jwt_secret").read_text()

    second = _start_up(db_url, home, tmp_path / "up2.log")
    try:
        base, _ = _login_link(second, tmp_path / "up2.log")
        assert (home / "jwt_secret").read_text() == secret, "reused, not regenerated"
        still = httpx.get(f"{base}/api/tenants", headers=headers)
        assert still.status_code == 200, "tokens minted before the restart still work"
        used = httpx.post(
            f"{base}/login",
            data={"token": token},
            headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
        )
        assert used.status_code == 401, "a used login link stays used after a restart"
    finally:
        assert _stop(second) == 0
