"""`aoer orgs`: organisations (dealer groups, agencies) that hold dealerships (DESIGN §12)."""

from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from aoer.bootstrap import open_services
from aoer.cli.runner import (
    JsonOutput,
    cli_actor,
    emit_json,
    json_time,
    print_fields,
    run_command,
    show,
)
from aoer.config import Settings
from aoer.errors import InvalidInput
from aoer.store.audit import AuditEntry
from aoer.store.organizations import Organization

orgs_app = typer.Typer(
    help="Organisations (dealer groups, agencies) that hold dealerships", no_args_is_help=True
)


def parse_org_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidInput(f"malformed organisation id {text!r}: expected a UUID") from None


@orgs_app.command("add")
def orgs_add(name: Annotated[str, typer.Argument(help="The organisation's name (unique)")]) -> None:
    """Create an organisation; prints its id and name."""

    async def main(settings: Settings) -> Organization:
        if not name.strip():
            raise InvalidInput("an organisation's name must not be empty")
        async with (
            open_services(settings) as services,
            services.store.session() as session,
            session.transaction(),
        ):
            org = await session.organizations.create(name)
            entry = AuditEntry(
                actor=cli_actor(), role="admin", action="org.create", org_id=org.id, target=org.name
            )
            await session.audit.record(entry)
        return org

    org = run_command(main)
    print_fields(org.id, org.name)


@orgs_app.command("list")
def orgs_list(as_json: JsonOutput = False) -> None:
    """List organisations with how many dealerships each holds (full ids)."""

    async def main(settings: Settings) -> list[Organization]:
        async with open_services(settings) as services, services.store.session() as session:
            return await session.organizations.all()

    found = run_command(main)
    if as_json:
        emit_json({"organizations": [org_json(o) for o in found]})
        return
    table = Table("id", "name", "dealerships", "created")
    table.columns[0].no_wrap = True
    for o in found:
        table.add_row(str(o.id), o.name, str(o.tenants), o.created_at.isoformat(timespec="seconds"))
    show(table)


def org_json(o: Organization) -> dict[str, object]:
    """An organisation as `GET /api/orgs` shows it."""
    return {
        "id": str(o.id),
        "name": o.name,
        "createdAt": json_time(o.created_at),
        "tenants": o.tenants,
    }
