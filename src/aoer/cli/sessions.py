"""`aoer sessions`: the dashboard's browser sessions, and revoking them server-side."""

import logging
import sys
from typing import Annotated

import typer

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.console import as_json
from aoer.cli.orgs import parse_org_id
from aoer.cli.runner import (
    EXIT_USAGE,
    JsonOutput,
    console,
    emit_json,
    fail,
    run_command,
    table_time,
)
from aoer.cli.serve import address, record_mint
from aoer.config import Settings
from aoer.constants import SESSION_REVOCATIONS_REFRESH_S
from aoer.db.embedded import running_up_url
from aoer.errors import AoerError

logger = logging.getLogger(__name__)

LINK_SUBJECT = "aoer-sessions-link"
LINK_TTL_WORDS = "15m"  # LOGIN_TOKEN_TTL, as `aoer token --ttl` writes it
LINK_NAME_MAX = 100

sessions_app = typer.Typer(
    help="Dashboard sessions: list the signed-in browsers, sign them out", no_args_is_help=True
)


@sessions_app.command("link")
def sessions_link(
    tenant_id: Annotated[
        str | None,
        typer.Option("--tenant", help="Sign in as this dealership's user (else: administrator)"),
    ] = None,
    org_id: Annotated[
        str | None,
        typer.Option("--org", help="Sign in as this organisation's user: its fleet view"),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="The dashboard's address, e.g. https://aoer.example.com (default: "
            "AOER_PUBLIC_URL, else the running `aoer up` of this AOER_HOME, else "
            "http://AOER_HOST:AOER_PORT)"
        ),
    ] = None,
    for_whom: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="NAME",
            help="Who the link is for (a name or an e-mail address): the audit log and the "
            f"console name the session's actions after it (default: {LINK_SUBJECT})",
        ),
    ] = None,
) -> None:
    """Print a one-time dashboard login link (valid once, for 15 minutes) to hand out; the
    mint is recorded in the audit log (token.mint)."""
    from aoer.api.auth import LOGIN_PURPOSE, LOGIN_TOKEN_TTL, TokenService
    from aoer.api.secret_files import with_secrets

    if tenant_id is not None and org_id is not None:
        fail("give --tenant or --org, not both", EXIT_USAGE)
    if url is not None and not url.startswith(("http://", "https://")):
        fail(f"invalid --url {url!r}: give the dashboard's http(s) address", EXIT_USAGE)
    subject = LINK_SUBJECT if for_whom is None else for_whom.strip()
    if not 0 < len(subject) <= LINK_NAME_MAX or not subject.isprintable():
        fail(
            f"invalid --as {for_whom!r}: give a name or an e-mail address of 1 to"
            f" {LINK_NAME_MAX} printable characters",
            EXIT_USAGE,
        )

    async def main(settings: Settings) -> str:
        settings = with_secrets(settings, create=False)
        if not settings.jwt_secret:
            raise AoerError(
                f"no AOER_JWT_SECRET and no {settings.home}/jwt_secret: "
                "set AOER_JWT_SECRET or start `aoer up`/`aoer serve` once"
            )
        tid = queue.parse_tenant_id(tenant_id) if tenant_id else None
        oid = parse_org_id(org_id) if org_id else None
        role = "tenant" if tid else "org" if oid else "admin"
        link = TokenService(settings.jwt_secret).mint(
            role,
            tenant_id=tid,
            org_id=oid,
            ttl=LOGIN_TOKEN_TTL,
            subject=subject,
            purpose=LOGIN_PURPOSE,
        )
        # Refuses an unknown tenant or organisation before anything is printed.
        await record_mint(settings, subject, role, tid, oid, LINK_TTL_WORDS, purpose=LOGIN_PURPOSE)
        # stderr: stdout is the link alone, for scripts (`open "$(aoer sessions link)"`).
        who = f"tenant {tid}" if tid else f"organisation {oid}" if oid else "an administrator"
        named = f" ({subject})" if for_whom is not None else ""
        print(f"minted a one-time login link for {who}{named}", file=sys.stderr, flush=True)
        base = (
            url
            or settings.public_url
            or running_up_url(settings.home)
            or f"http://{address(settings.host, settings.port)}"
        )
        return f"{base.rstrip('/')}/login?token={link}"

    # print, not rich: the link must not be wrapped.
    print(run_command(main), flush=True)


@sessions_app.command("list")
def sessions_list(as_json_flag: JsonOutput = False) -> None:
    """Sessions that are signed in now (newest first)."""

    async def main(settings: Settings) -> None:
        async with open_services(settings) as services, services.store.session() as session:
            live = await session.sessions.live()
        if as_json_flag:
            emit_json({"sessions": [as_json(s) for s in live]})
            return
        # Tab-separated full values (ids are never cut), one session per line.
        typer.echo("id\tsubject\trole\ttenant\tsigned_in\texpires")
        for s in live:
            fields = (
                s.id,
                s.subject,
                s.role,
                s.tenant_id or "-",
                table_time(s.created_at),
                table_time(s.expires_at),
            )
            typer.echo("\t".join(str(f) for f in fields))

    run_command(main)


@sessions_app.command("revoke")
def sessions_revoke(
    tenant_id: Annotated[
        str | None, typer.Option("--tenant", help="Every session of this tenant")
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Every session of this subject")
    ] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Every session there is")] = False,
) -> None:
    """Sign browsers out server-side; every API process refuses their cookies within 2 s."""
    if everyone == (tenant_id is not None or subject is not None):
        fail("name whose sessions to revoke: --tenant ID and/or --subject S, or --all", EXIT_USAGE)

    async def main(settings: Settings) -> int:
        tid = queue.parse_tenant_id(tenant_id) if tenant_id else None
        async with open_services(settings) as services, services.store.session() as session:
            revoked = await session.sessions.revoke_all(tenant_id=tid, subject=subject)
        logger.info(
            "revoked %d dashboard session(s) (tenant %s, subject %s)",
            len(revoked),
            tid or "any",
            subject or "any",
            extra={"action": "revoke"},
        )
        return len(revoked)

    count = run_command(main)
    console.print(
        f"revoked {count} session(s); every API process refuses them within "
        f"{SESSION_REVOCATIONS_REFRESH_S:.0f} s"
    )
