"""Browser sessions against hostile browsers (issue 11, items 6 and 7): login links work once
across replicas and restarts, signing out ends a session everywhere, and another site can
neither sign a browser in, nor change anything with its cookie, nor trigger the cron."""

import asyncio
import json
import time
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from aoer.api.auth import LOGIN_PURPOSE, SESSION_COOKIE, TokenService
from aoer.constants import SESSION_REVOCATIONS_REFRESH_S
from aoer.db.pool import Connection
from tests.api.conftest import Api, ApiFactory
from tests.api.test_cli_api import run_cli
from tests.api.test_isolation import snapshot
from tests.conftest import MakeTenant, eventually

HTML = {"Accept": "text/html,application/xhtml+xml"}
CROSS_SITE = {
    "cross-site": {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    # Another port on 127.0.0.1 is the same *site*, not the same origin.
    "same-site": {"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site"},
    "foreign origin only": {"Origin": "http://evil.example"},
    "opaque origin": {"Origin": "null"},
    "no origin at all": {},
}


def same_origin(api: Api) -> dict[str, str]:
    """What a browser sends with a form post or fetch() from one of the app's own pages."""
    return {"Origin": api.base_url, "Sec-Fetch-Site": "same-origin"}


def login_link(api: Api, tenant: UUID | None = None) -> str:
    role = "tenant" if tenant else "admin"
    return api.tokens.mint(role, tenant_id=tenant, purpose=LOGIN_PURPOSE)


async def press_sign_in(
    api: Api, link: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """The login page's button: a form post of the link's token."""
    return await api.client.post(
        "/login", data={"token": link}, headers=same_origin(api) if headers is None else headers
    )


async def signed_in(api: Api, link: str) -> str:
    """Sign in through the button; the session cookie's value."""
    response = await press_sign_in(api, link)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard"
    cookie = api.client.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie


async def test_opening_a_login_link_asks_first_and_sets_no_cookie(
    api: Api, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("Corner Motors")
    link = login_link(api, tenant)

    opened = await api.client.get("/login", params={"token": link}, headers=HTML)

    assert opened.status_code == 200
    assert "set-cookie" not in opened.headers
    assert not api.client.cookies
    assert "Corner Motors" in opened.text
    assert "dealership user" in opened.text
    assert '<form method="post" action="/login">' in opened.text
    assert f'<input type="hidden" name="token" value="{link}">' in opened.text
    assert opened.headers["cache-control"] == "no-store"
    # Opening it (a prefetch, a link scanner) used nothing up: the button still signs in.
    assert (await api.client.get("/login", params={"token": link})).status_code == 200
    await signed_in(api, link)
    own = await api.client.get("/api/aoer/queue", params={"tenantId": str(tenant)})
    assert own.status_code == 200


async def test_a_login_link_used_on_one_replica_is_refused_by_another_and_after_a_restart(
    make_api: ApiFactory,
) -> None:
    first, second = await make_api(), await make_api()
    link = login_link(first)

    await signed_in(first, link)

    refused = await press_sign_in(second, link)
    assert refused.status_code == 401
    assert "already used" in refused.json()["error"]
    assert "set-cookie" not in refused.headers
    shown = await second.client.get("/login", params={"token": link}, headers=HTML)
    assert shown.status_code == 401
    assert "already used" in shown.text
    assert "Sign in to see the dashboard" in shown.text
    restarted = await make_api()  # a process started after the link was used
    assert (await press_sign_in(restarted, link)).status_code == 401


async def test_a_bearer_token_is_no_login_link(api: Api, make_tenant: MakeTenant) -> None:
    """A day-long admin bearer token must not sign a browser in, let alone again and again."""
    tenant = await make_tenant("Bearer Motors")
    for bearer in (api.tokens.mint("admin"), api.tokens.mint("tenant", tenant_id=tenant)):
        for _ in range(2):
            refused = await press_sign_in(api, bearer)
            assert refused.status_code == 401
            assert "not a login link" in refused.json()["error"]
            assert "set-cookie" not in refused.headers
        shown = await api.client.get("/login", params={"token": bearer}, headers=HTML)
        assert shown.status_code == 401
        assert "not a login link" in shown.text
        assert 'action="/login"' not in shown.text, "no Sign in button for a bearer token"
    assert not api.client.cookies


def test_sessions_link_prints_a_one_time_link_for_an_admin_a_known_tenant_or_organisation(
    db_url: str, tmp_path: Path
) -> None:
    import subprocess

    import psycopg

    from tests.acceptance.conftest import cli_command, cli_env
    from tests.api.conftest import JWT_SECRET

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = cli_env(db_url, AOER_HOME=str(tmp_path), AOER_JWT_SECRET=JWT_SECRET, **extra)
        return subprocess.run(
            cli_command(*args), env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def principal_subject_of(result: subprocess.CompletedProcess[str]) -> str:
        assert result.returncode == 0, result.stderr
        token = result.stdout.strip().split("token=", 1)[1]
        return TokenService(JWT_SECRET).verify(token).subject

    admin = run("sessions", "link")
    assert admin.returncode == 0, admin.stderr
    link = admin.stdout.strip()
    assert link.startswith("http://127.0.0.1:8000/login?token=")
    principal = TokenService(JWT_SECRET).verify(link.split("token=", 1)[1])
    assert (principal.role, principal.purpose) == ("admin", LOGIN_PURPOSE)

    with psycopg.connect(db_url, autocommit=True) as conn:
        org = conn.execute("INSERT INTO organizations (name) VALUES ('Link Group') RETURNING id")
        org_id = UUID(str(org.fetchone()[0]))  # type: ignore[index]
    group = run("sessions", "link", "--org", str(org_id), "--as", " jane@group.example ")
    assert group.returncode == 0, group.stderr
    principal = TokenService(JWT_SECRET).verify(group.stdout.strip().split("token=", 1)[1])
    assert (principal.role, principal.org_id, principal.purpose) == ("org", org_id, LOGIN_PURPOSE)
    # Named, the session's actions are audited under that name, not aoer-sessions-link.
    assert principal.subject == "jane@group.example"
    assert f"for organisation {org_id} (jane@group.example)" in group.stderr
    assert principal_subject_of(run("sessions", "link")) == "aoer-sessions-link"
    for bad in ("", "  ", "x" * 101, "tab\there"):
        refused = run("sessions", "link", "--as", bad)
        assert refused.returncode == 2, bad
        assert "invalid --as" in refused.stderr

    with psycopg.connect(db_url, autocommit=True) as conn:
        audited = conn.execute(
            "SELECT action, role, org_id, target, details FROM audit_log ORDER BY id"
        ).fetchall()
    login = {"ttl": "15m", "purpose": "login"}
    assert audited == [
        ("token.mint", "admin", None, "aoer-sessions-link", {"role": "admin", **login}),
        ("token.mint", "admin", org_id, "jane@group.example", {"role": "org", **login}),
        ("token.mint", "admin", None, "aoer-sessions-link", {"role": "admin", **login}),
    ]

    for args, why in (
        (("--tenant", str(uuid4())), "unknown tenant"),
        (("--org", str(uuid4())), "unknown organisation"),
    ):
        unknown = run("sessions", "link", *args)
        assert unknown.returncode == 1
        assert why in unknown.stderr
        assert not unknown.stdout
    both = run("sessions", "link", "--tenant", str(uuid4()), "--org", str(org_id))
    assert both.returncode == 2
    assert "--tenant or --org, not both" in both.stderr
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (3,)

    # Behind a proxy the dashboard's address is given; a bare host name is refused.
    proxied = run("sessions", "link", "--url", "https://aoer.example.com/")
    assert proxied.returncode == 0, proxied.stderr
    assert proxied.stdout.startswith("https://aoer.example.com/login?token=")
    refused = run("sessions", "link", "--url", "aoer.example.com")
    assert refused.returncode == 2
    assert "invalid --url 'aoer.example.com'" in refused.stderr
    # The address set once for the deployment (the one alert e-mails link to).
    public = run("sessions", "link", AOER_PUBLIC_URL="https://public.example.com/")
    assert public.returncode == 0, public.stderr
    assert public.stdout.startswith("https://public.example.com/login?token=")
    bad = run("sessions", "link", AOER_PUBLIC_URL="public.example.com")
    assert bad.returncode == 2
    assert "AOER_PUBLIC_URL must be the dashboard's http(s) address" in bad.stderr


async def test_two_replicas_taking_one_login_link_at_once_sign_in_once(
    make_api: ApiFactory,
) -> None:
    apis = [await make_api() for _ in range(4)]
    link = login_link(apis[0])

    answers = await asyncio.gather(*(press_sign_in(api, link) for api in apis))

    assert sorted(a.status_code for a in answers) == [303, 401, 401, 401]


async def test_sign_in_from_another_site_is_refused_and_uses_nothing_up(api: Api) -> None:
    link = login_link(api)
    for label, headers in CROSS_SITE.items():
        refused = await press_sign_in(api, link, headers={**headers, **HTML})
        assert refused.status_code == 403, label
        assert "cross-site sign-in refused" in refused.text, label
        assert "set-cookie" not in refused.headers, label
    await signed_in(api, link)


async def test_sign_out_ends_the_session_on_every_replica_within_the_bound(
    make_api: ApiFactory,
) -> None:
    here, there = await make_api(), await make_api()
    cookie = await signed_in(here, login_link(here))
    there.client.cookies.set(SESSION_COOKIE, cookie)
    for api in (here, there):
        assert (await api.client.get("/api/tenants")).status_code == 200
    page = await here.client.get("/dashboard/fleet")
    assert '<form class="sign-out" method="post" action="/logout">' in page.text

    out = await here.client.post("/logout", headers={**same_origin(here), **HTML})
    signed_out_at = time.monotonic()

    assert out.status_code == 200
    assert "You are signed out" in out.text
    assert not here.client.cookies.get(SESSION_COOKIE), "the cookie is cleared"
    # The old cookie, replayed, fails at once here and within the bound on the other replica.
    here.client.cookies.set(SESSION_COOKIE, cookie)
    at_once = await here.client.get("/api/tenants")
    assert at_once.status_code == 401
    assert "signed out" in at_once.json()["error"]

    async def refused_there() -> bool:
        return (await there.client.get("/api/tenants")).status_code == 401

    bound_s = SESSION_REVOCATIONS_REFRESH_S
    await eventually(refused_there, "the other replica refuses the signed-out cookie", bound_s + 2)
    print(f"other replica refused the cookie {time.monotonic() - signed_out_at:.2f} s later")
    dashboard = await there.client.get("/dashboard", headers=HTML)
    assert dashboard.status_code == 401
    assert "signed out" in dashboard.text
    # Lifted out of the cookie into a header, the session token is refused as well.
    bearer = await there.client.get("/api/tenants", headers={"Authorization": f"Bearer {cookie}"})
    assert bearer.status_code == 401


async def test_sign_out_from_another_site_is_refused(api: Api) -> None:
    await signed_in(api, login_link(api))
    for label, headers in CROSS_SITE.items():
        refused = await api.client.post("/logout", headers=headers)
        assert refused.status_code == 403, label
        assert "set-cookie" not in refused.headers, label
    assert (await api.client.get("/api/tenants")).status_code == 200, "still signed in"


@pytest.mark.parametrize("headers", CROSS_SITE.values(), ids=CROSS_SITE.keys())
async def test_a_cross_site_request_with_the_cookie_is_refused_and_writes_nothing(
    api: Api, conn: Connection, make_tenant: MakeTenant, headers: dict[str, str]
) -> None:
    tenant = await make_tenant()
    await signed_in(api, login_link(api))
    before = await snapshot(conn)

    queued = await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(tenant)}, headers=headers
    )
    created = await api.client.post("/api/tenants", json={"name": "Evil Motors"}, headers=headers)

    for response in (queued, created):
        assert response.status_code == 403, response.text
        assert response.json()["error"].startswith("cross-site request refused")
    assert await snapshot(conn) == before


async def test_the_cookie_changes_state_from_the_apps_own_pages_and_bearer_tokens_anywhere(
    api: Api, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant()
    body = {"tenantId": str(tenant)}
    await signed_in(api, login_link(api, tenant))
    # fetch() from the dashboard (tenant.js "Recompute now"), and an older browser's Origin
    for headers in (same_origin(api), {"Origin": api.base_url}):
        ok = await api.client.post("/api/aoer/queue", json=body, headers=headers)
        assert ok.status_code == 202, ok.text
    api.client.cookies.clear()
    script = await api.client.post(
        "/api/aoer/queue", json=body, headers={**CROSS_SITE["cross-site"], **api.admin}
    )
    assert script.status_code == 202, "a bearer token is no ambient credential"


async def test_the_cron_refuses_the_session_cookie_even_from_its_own_pages(
    api: Api, conn: Connection, make_tenant: MakeTenant
) -> None:
    await make_tenant()
    await signed_in(api, login_link(api))
    before = await snapshot(conn)

    for headers in ({}, same_origin(api)):
        refused = await api.client.get("/api/aoer/cron", headers=headers)
        assert refused.status_code == 403
        assert "never the session cookie" in refused.json()["error"]
    assert await snapshot(conn) == before

    api.client.cookies.clear()
    assert (await api.client.get("/api/aoer/cron", headers=api.admin)).json()["queued"] == 1


async def test_the_cookie_must_hold_a_session_not_a_bearer_token(api: Api) -> None:
    api.client.cookies.set(SESSION_COOKIE, api.tokens.mint("admin"))
    refused = await api.client.get("/api/tenants")
    assert refused.status_code == 401
    assert "holds no session" in refused.json()["error"]


async def test_an_operator_revokes_a_tenants_sessions_server_side(
    make_api: ApiFactory, make_tenant: MakeTenant, db_url: str, tmp_path: Path
) -> None:
    a, b = await make_tenant("A Motors"), await make_tenant("B Motors")
    mine, theirs = await make_api(), await make_api()
    await signed_in(mine, login_link(mine, a))
    await signed_in(theirs, login_link(theirs, b))
    listed = await asyncio.to_thread(run_cli, db_url, tmp_path, "sessions", "list")
    assert str(a) in listed.stdout, listed.stdout
    assert str(b) in listed.stdout, listed.stdout
    as_json = await asyncio.to_thread(run_cli, db_url, tmp_path, "sessions", "list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    live = json.loads(as_json.stdout)["sessions"]
    assert sorted(s["tenantId"] for s in live) == sorted([str(a), str(b)])
    assert {(s["role"], s["revokedAt"]) for s in live} == {("tenant", None)}

    revoked = await asyncio.to_thread(
        run_cli, db_url, tmp_path, "sessions", "revoke", "--tenant", str(a)
    )

    assert revoked.returncode == 0, revoked.stderr
    assert "revoked 1 session(s)" in revoked.stdout

    async def a_signed_out() -> bool:
        answer = await mine.client.get("/api/aoer/queue", params={"tenantId": str(a)})
        return answer.status_code == 401

    await eventually(a_signed_out, "A's session is refused", SESSION_REVOCATIONS_REFRESH_S + 2)
    still = await theirs.client.get("/api/aoer/queue", params={"tenantId": str(b)})
    assert still.status_code == 200, "B's session is untouched"
    usage = await asyncio.to_thread(run_cli, db_url, tmp_path, "sessions", "revoke")
    assert usage.returncode == 2
    assert "--all" in usage.stderr + usage.stdout
