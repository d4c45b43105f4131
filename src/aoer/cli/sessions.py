"""`aoer sessions`: the dashboard's browser sessions, and revoking them server-side."""

import logging
from typing import Annotated

import typer

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.runner import EXIT_USAGE, console, fail, run_command
from aoer.config import Settings
from aoer.constants import SESSION_REVOCATIONS_REFRESH_S

logger = logging.getLogger(__name__)

sessions_app = typer.Typer(
    help="Dashboard sessions: list the signed-in browsers, sign them out", no_args_is_help=True
)


@sessions_app.command("list")
def sessions_list() -> None:
    """Sessions that are signed in now (newest first)."""

    async def main(settings: Settings) -> None:
        async with open_services(settings) as services, services.store.session() as session:
            live = await session.sessions.live()
        # Tab-separated full values (ids are never cut), one session per line.
        typer.echo("id\tsubject\trole\ttenant\tsigned_in\texpires")
        for s in live:
            fields = (s.id, s.subject, s.role, str(s.tenant_id or "-"), s.created_at, s.expires_at)
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
