"""`aoer alerts`: rules, webhook endpoints, the alert feed and the endpoint test (DESIGN §13).

The CLI acts as an administrator (it holds the database); every change is audited with the
operating system user as the actor.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from aoer.alerts import manage, webhooks
from aoer.alerts.addresses import AddressPolicy
from aoer.alerts.wording import delivery_line
from aoer.bootstrap import open_services
from aoer.cli.imports import say
from aoer.cli.runner import (
    JsonOutput,
    cli_actor,
    console,
    emit_json,
    fail,
    print_fields,
    run_command,
    show,
    table_time,
)
from aoer.config import Settings
from aoer.constants import ALERT_KINDS
from aoer.errors import InvalidInput, NotFound
from aoer.queue.console import decode_cursor, encode_cursor
from aoer.store.alerts import Alert, Endpoint, Rule, hosts_by_id
from aoer.types import Page

alerts_app = typer.Typer(
    help="Alerts: rules, webhook endpoints, the feed, endpoint tests", no_args_is_help=True
)
rules_app = typer.Typer(help="Alert rules (no subcommand: list them)")
endpoints_app = typer.Typer(help="Webhook endpoints (no subcommand: list them)")
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(endpoints_app, name="endpoints")


def _actor() -> manage.Actor:
    return manage.Actor(cli_actor(), "admin")


def _uuid(value: str | None, what: str) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput(f"malformed {what} {value!r}: expected a UUID") from None


def _required_uuid(value: str, what: str) -> UUID:
    found = _uuid(value, what)
    assert found is not None
    return found


# `--json` answers are the API's own response models, so a script reads both alike. They are
# imported when one is written: the API's modules load FastAPI, ~0.5 s every command would pay.


def rule_json(rule: Rule) -> dict[str, Any]:
    """A rule as `GET /api/alerts/rules` shows it."""
    from aoer.api.routes.alerts import RuleOut

    return RuleOut.of_rule(rule).model_dump(mode="json", by_alias=True)


def endpoint_json(endpoint: Endpoint, *, secret: bool = False) -> dict[str, Any]:
    """An endpoint as the API shows it; with its secret as only its creation answers."""
    from aoer.api.routes.alerts import EndpointCreatedOut, EndpointOut

    shown = EndpointCreatedOut.of(endpoint) if secret else EndpointOut.of(endpoint)
    return shown.model_dump(mode="json", by_alias=True)


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as `GET /api/alerts` lists it: scores as numbers, times as the API's."""
    from aoer.api.schemas import AlertOut

    return AlertOut.of(alert).model_dump(mode="json", by_alias=True)


@rules_app.callback(invoke_without_command=True)
def rules_list(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", help="Only those watching this tenant (its own and its organisation's)"
        ),
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's")] = None,
    as_json: JsonOutput = False,
) -> None:
    """List alert rules (full ids; `--json` for scripts)."""
    if ctx.invoked_subcommand is not None:
        return

    async def main(settings: Settings) -> tuple[list[Rule], dict[UUID, str]]:
        async with open_services(settings) as services, services.store.session() as session:
            rules = await session.alerts.rules(
                tenant_id=_uuid(tenant, "tenant id"), org_id=_uuid(org, "organisation id")
            )
            names: dict[UUID, str] = {o.id: o.name for o in await session.organizations.all()}
            names |= await session.tenants.names_of([r.tenant_id for r in rules if r.tenant_id])
        return rules, names

    found, names = run_command(main)
    if as_json:
        emit_json({"rules": [rule_json(r) for r in found]})
        return
    table = Table("id", "kind", "watches", "params", "endpoints", "emails")
    table.columns[0].no_wrap = True
    for r in found:
        watched = r.tenant_id or r.org_id
        name = f" {names[watched]}" if watched in names else ""
        watches = f"{'tenant' if r.tenant_id else 'org'}{name} ({watched})"
        params = ", ".join(f"{k} {v}" for k, v in manage.plain(r.params).items())
        table.add_row(
            str(r.id), r.kind, watches, params, str(len(r.endpoint_ids)), ", ".join(r.emails)
        )
    show(table)


@rules_app.command("add")
def rules_add(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(ALERT_KINDS)}")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Watch this tenant")] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Watch every tenant of this organisation")
    ] = None,
    points: Annotated[
        float | None, typer.Option(help="score_drop: how many points the score must fall")
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="score_drop: over how many days; stale_data: after")
    ] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option("--endpoint", help="Webhook endpoint id (repeatable)")
    ] = None,
    email: Annotated[
        list[str] | None, typer.Option("--email", help="E-mail address (repeatable)")
    ] = None,
) -> None:
    """Add an alert rule; prints its id."""
    if (tenant is None) == (org is None):
        raise typer.BadParameter(
            "give one of --tenant and --org: a rule watches one tenant or one organisation"
        )

    async def main(settings: Settings) -> Rule:
        request = manage.RuleRequest(
            kind=kind,
            tenant_id=_uuid(tenant, "tenant id"),
            org_id=_uuid(org, "organisation id"),
            points=Decimal(str(points)) if points is not None else None,
            days=days,
            endpoint_ids=[_required_uuid(e, "endpoint id") for e in endpoint or []],
            emails=list(email or []),
        )
        async with open_services(settings) as services, services.store.session() as session:
            rule = await manage.add_rule(session, _actor(), request)
        if rule.emails and settings.smtp_url is None:
            say(
                "note: AOER_SMTP_URL is not set here: workers need it to send these e-mails;"
                " without it each attempt fails, and a delivery is given up after the retry"
                " window"
            )
        return rule

    rule = run_command(main)
    console.print(str(rule.id))


@rules_app.command("remove")
def rules_remove(rule_id: Annotated[str, typer.Argument(help="The rule's id")]) -> None:
    """Remove an alert rule (its alerts stay in the feed)."""

    async def main(settings: Settings) -> None:
        rid = _required_uuid(rule_id, "rule id")
        async with open_services(settings) as services, services.store.session() as session:
            await manage.remove_rule(session, _actor(), rid)

    run_command(main)
    console.print(f"removed rule {rule_id}")


@endpoints_app.callback(invoke_without_command=True)
def endpoints_list(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's")] = None,
    as_json: JsonOutput = False,
) -> None:
    """List webhook endpoints (secrets are shown only when an endpoint is added)."""
    if ctx.invoked_subcommand is not None:
        return

    async def main(settings: Settings) -> list[Endpoint]:
        async with open_services(settings) as services, services.store.session() as session:
            return await session.alerts.endpoints(_uuid(org, "organisation id"))

    found = run_command(main)
    if as_json:
        emit_json({"endpoints": [endpoint_json(e) for e in found]})
        return
    table = Table("id", "url", "organisation", "created")
    table.columns[0].no_wrap = True
    for e in found:
        table.add_row(str(e.id), e.url, str(e.org_id or "-"), table_time(e.created_at))
    show(table)


@endpoints_app.command("add")
def endpoints_add(
    url: Annotated[str, typer.Argument(help="http:// or https:// URL that receives webhooks")],
    secret: Annotated[
        str | None, typer.Option(help="whsec_… signing secret (default: a new one)")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="The owning organisation")] = None,
    as_json: JsonOutput = False,
) -> None:
    """Add a webhook endpoint; prints its id and its signing secret (shown only now)."""

    async def main(settings: Settings) -> Endpoint:
        async with open_services(settings) as services, services.store.session() as session:
            return await manage.add_endpoint(
                session,
                _actor(),
                url=url,
                secret=secret,
                org_id=_uuid(org, "organisation id"),
                addresses=AddressPolicy.from_settings(settings),
            )

    endpoint = run_command(main)
    if as_json:
        emit_json(endpoint_json(endpoint, secret=True))
        return
    print_fields(endpoint.id, endpoint.secret)


@endpoints_app.command("remove")
def endpoints_remove(endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")]) -> None:
    """Remove a webhook endpoint: its pending deliveries end failed, rules stop naming it."""

    async def main(settings: Settings) -> int:
        eid = _required_uuid(endpoint_id, "endpoint id")
        async with open_services(settings) as services, services.store.session() as session:
            return (await manage.remove_endpoint(session, _actor(), eid)).cancelled

    cancelled = run_command(main)
    console.print(f"removed endpoint {endpoint_id} ({cancelled} pending deliveries cancelled)")


@alerts_app.command("list")
def alerts_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only alerts at or after (ISO date or time)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many")] = 100,
    before: Annotated[
        str | None, typer.Option(help="The cursor printed after the previous page")
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """The alert feed, newest first, with each delivery's state; prints the cursor of the
    next page when there is one."""

    async def main(settings: Settings) -> tuple[Page[Alert], dict[str, str]]:
        after = decode_cursor(before) if before is not None else None
        async with open_services(settings) as services, services.store.session() as session:
            feed = await session.alerts.feed(
                tenant_id=_uuid(tenant, "tenant id"),
                org_id=_uuid(org, "organisation id"),
                since=since,
                before=after,
                limit=limit,
            )
            hosts = hosts_by_id(await session.alerts.endpoints())
        return feed, hosts

    page, hosts = run_command(main)
    found, last = page.rows, page.last
    cursor = encode_cursor(last.created_at, last.id) if last else None
    if as_json:
        emit_json({"alerts": [alert_json(a) for a in found], "nextBefore": cursor})
        return
    table = Table("id", "when", "kind", "tenant", "deliveries")
    table.columns[0].no_wrap = True
    for a in found:
        states = ", ".join(delivery_line(d, hosts) for d in a.deliveries)
        name = a.data.get("tenantName") or a.tenant_id
        table.add_row(str(a.id), table_time(a.created_at), a.kind, str(name), states or "-")
    show(table)
    if cursor:
        console.print(f"next page: --before {cursor}", highlight=False)


@alerts_app.command("test")
def alerts_test(endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")]) -> None:
    """Send a signed `ping` to a webhook endpoint now; exit 1 unless it answers 2xx."""

    async def main(settings: Settings) -> tuple[str, webhooks.Attempt]:
        eid = _required_uuid(endpoint_id, "endpoint id")
        async with open_services(settings) as services, services.store.session() as session:
            found = await session.alerts.endpoints_by_id([eid])
        if not found:
            raise NotFound(f"no alert endpoint {eid}")
        endpoint = found[0]
        return await webhooks.ping(
            endpoint.url,
            endpoint.secret,
            str(endpoint.id),
            settings.alert_http_timeout_s,
            AddressPolicy.for_owner(settings, endpoint.org_id),
        )

    msg_id, attempt = run_command(main)
    if not attempt.ok:
        fail(f"ping {msg_id} not delivered: {attempt.error}")
    console.print(f"ping {msg_id} delivered (HTTP {attempt.status_code})")
