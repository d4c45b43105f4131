"""`aoer keys`: create (shown once), list and revoke API keys (DESIGN §12)."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.orgs import parse_org_id
from aoer.cli.runner import (
    JsonOutput,
    cli_actor,
    console,
    emit_json,
    json_time,
    run_command,
    show,
    table_time,
)
from aoer.config import Settings
from aoer.constants import API_KEY_REFRESH_S, API_KEY_STALE_S
from aoer.errors import InvalidInput, NotFound
from aoer.store.audit import AuditEntry
from aoer.store.keys import ApiKey, IssuedKey

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke", no_args_is_help=True)

_EXPIRES = re.compile(r"^(\d+)\s*([hdwy]?)$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "": timedelta(days=1),
          "w": timedelta(weeks=1), "y": timedelta(days=365)}  # fmt: skip
MAX_EXPIRY = timedelta(days=3650)


def parse_expiry(text: str) -> timedelta:
    """`90d`, `12h`, `2w`, `1y` (a bare number is days)."""
    match = _EXPIRES.match(text.strip().lower())
    if not match:
        raise InvalidInput(
            f"invalid --expires {text!r}: use a positive number of hours, days, weeks or "
            "years, e.g. 90d, 12h, 2w, 1y"
        )
    span = int(match[1]) * _UNITS[match[2]]
    if not timedelta(0) < span <= MAX_EXPIRY:
        raise InvalidInput(f"invalid --expires {text!r}: must be in the future, at most 3650d")
    return span


@keys_app.command("create")
def keys_create(
    org: Annotated[str | None, typer.Option("--org", help="An organisation key (UUID)")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="A tenant key (UUID)")] = None,
    service: Annotated[bool, typer.Option("--service", help="A service key")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="An admin key")] = False,
    name: Annotated[str | None, typer.Option("--name", help="What the key is for")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, e.g. 90d, 12h (default: never)")
    ] = None,
) -> None:
    """Create an API key; the key is the last line printed, and is never shown again."""
    chosen = [s for s, on in (("org", org), ("tenant", tenant), ("service", service),
                              ("admin", admin)) if on]  # fmt: skip

    async def main(settings: Settings) -> IssuedKey:
        if len(chosen) != 1:
            raise InvalidInput("give exactly one of --org ID, --tenant ID, --service, --admin")
        org_id = parse_org_id(org) if org else None
        tenant_id = queue.parse_tenant_id(tenant) if tenant else None
        expires_at = datetime.now(UTC) + parse_expiry(expires) if expires else None
        async with (
            open_services(settings) as services,
            services.store.session() as session,
            session.transaction(),
        ):
            issued = await session.keys.issue(
                chosen[0],
                org_id=org_id,
                tenant_id=tenant_id,
                name=name.strip() if name and name.strip() else None,
                expires_at=expires_at,
                created_by=cli_actor(),
            )
            owner = await session.organizations.of_tenant(tenant_id) if tenant_id else None
            await session.audit.record(
                AuditEntry(
                    actor=cli_actor(),
                    role="admin",
                    action="key.create",
                    org_id=org_id or (owner.org_id if owner else None),
                    tenant_id=tenant_id,
                    target=str(issued.record.id),
                    details={"scope": chosen[0], "name": name, "prefix": issued.record.prefix},
                )
            )
        return issued

    issued = run_command(main)
    record = issued.record
    whose = record.org_id or record.tenant_id
    expiry = record.expires_at.isoformat(timespec="seconds") if record.expires_at else "never"
    typer.echo(
        f"created {record.scope} key {record.id}{f' for {whose}' if whose else ''}, "
        f"expires {expiry}. Store it now: it is not shown again.",
        err=True,
    )
    print(issued.key, flush=True)


@keys_app.command("list")
def keys_list(as_json: JsonOutput = False) -> None:
    """List API keys (never the keys themselves: their first characters)."""

    async def main(settings: Settings) -> list[ApiKey]:
        async with open_services(settings) as services, services.store.session() as session:
            return await session.keys.list()

    found = run_command(main)
    if as_json:
        emit_json({"keys": [key_json(k) for k in found]})
        return
    table = Table(
        "id", "prefix", "scope", "for", "name", "created", "expires", "state", "last used"
    )
    table.columns[0].no_wrap = True
    for k in found:
        table.add_row(
            str(k.id),
            k.prefix + "…",
            k.scope,
            _for(k),
            k.name or "",
            _when(k.created_at),
            _when(k.expires_at) or "never",
            key_state(k),
            _when(k.last_used_at),
        )
    show(table)


def _for(key: ApiKey) -> str:
    """Whom a key is for: the tenant by name and id, or the organisation's id."""
    if key.tenant_id is not None:
        return f"{key.tenant_name} ({key.tenant_id})" if key.tenant_name else str(key.tenant_id)
    return str(key.org_id or "")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (UUID)")]) -> None:
    """Revoke a key: every API process refuses it within 5 seconds."""

    async def main(settings: Settings) -> ApiKey | None:
        try:
            kid = UUID(key_id)
        except ValueError:
            raise InvalidInput(f"malformed key id {key_id!r}: expected a UUID") from None
        async with (
            open_services(settings) as services,
            services.store.session() as session,
            session.transaction(),
        ):
            revoked = await session.keys.revoke(kid)
            if revoked is None:
                if await session.keys.get(kid) is None:
                    raise NotFound(f"unknown API key {kid}")
                return None
            owner = (
                await session.organizations.of_tenant(revoked.tenant_id)
                if revoked.tenant_id
                else None
            )
            await session.audit.record(
                AuditEntry(
                    actor=cli_actor(),
                    role="admin",
                    action="key.revoke",
                    org_id=revoked.org_id or (owner.org_id if owner else None),
                    tenant_id=revoked.tenant_id,
                    target=str(kid),
                    details={"scope": revoked.scope, "prefix": revoked.prefix},
                )
            )
        return revoked

    revoked = run_command(main)
    if revoked is None:
        console.print(f"key {key_id} was already revoked", highlight=False)
        return
    bound = int(API_KEY_REFRESH_S + API_KEY_STALE_S)
    console.print(
        f"revoked key {revoked.id}: every API process refuses it within {bound} s",
        highlight=False,
    )


def key_state(k: ApiKey) -> str:
    if k.revoked_at is not None:
        return "revoked"
    if k.expires_at is not None and k.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


def _when(at: datetime | None) -> str:
    return table_time(at, empty="")


def key_json(k: ApiKey) -> dict[str, object]:
    """A key as `GET /api/keys` shows it."""
    return {
        "id": str(k.id),
        "prefix": k.prefix,
        "scope": k.scope,
        "orgId": str(k.org_id) if k.org_id else None,
        "tenantId": str(k.tenant_id) if k.tenant_id else None,
        "name": k.name,
        "createdBy": k.created_by,
        "createdAt": json_time(k.created_at),
        "expiresAt": json_time(k.expires_at),
        "revokedAt": json_time(k.revoked_at),
        "lastUsedAt": json_time(k.last_used_at),
        "state": key_state(k),
    }
