"""Changing alert rules and endpoints, for the API and the CLI alike: check the input and the
caller's organisation, write, and audit, all in one transaction.

`own_org` is the organisation a scoped caller acts for (None: an administrator). The session
is the caller's: under an organisation's scope, Row Level Security hides every other
organisation's tenants, endpoints and rules, so "not found" is all another's rows ever are.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from aoer.alerts import rules as checks
from aoer.alerts.addresses import AddressPolicy
from aoer.errors import Conflict, InvalidInput, NotAllowed, NotFound
from aoer.store import Session
from aoer.store.alerts import DeletedEndpoint, Endpoint, NewRule, Rule
from aoer.store.audit import AuditEntry


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, for the audit log."""

    subject: str
    role: str
    own_org: UUID | None = None  # the organisation a scoped caller acts for
    ip: str | None = None

    def entry(
        self,
        action: str,
        target: UUID,
        *,
        org_id: UUID | None = None,
        tenant_id: UUID | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            actor=self.subject,
            role=self.role,
            action=action,
            org_id=org_id,
            tenant_id=tenant_id,
            target=str(target),
            details=details or {},
            ip=self.ip,
        )


@dataclass(frozen=True, slots=True)
class RuleRequest:
    kind: str
    tenant_id: UUID | None
    org_id: UUID | None
    points: Decimal | float | None
    days: int | None
    endpoint_ids: list[UUID]
    emails: list[str]


def plain(params: dict[str, Any]) -> dict[str, Any]:
    """Rule parameters as plain JSON numbers (the database hands back Decimals)."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in params.items()}


async def add_endpoint(
    session: Session,
    actor: Actor,
    *,
    url: str,
    secret: str | None,
    org_id: UUID | None,
    addresses: AddressPolicy,
) -> Endpoint:
    """An endpoint for `org_id` (None: the administrator's own). An organisation's endpoint
    may not name a private or loopback address (`addresses`); a name is checked against what
    it resolves to at each delivery."""
    url = checks.check_url(url)
    secret = checks.check_secret(secret) if secret is not None else checks.new_secret()
    if actor.own_org is not None:
        if org_id is not None and org_id != actor.own_org:
            raise NotAllowed(f"organisation {org_id} is not yours: endpoints belong to yours")
        org_id = actor.own_org
    if org_id is not None:
        addresses.check_url_host(urlsplit(url).hostname or "")
    async with session.transaction():
        if org_id is not None and await session.organizations.get(org_id) is None:
            raise NotFound(f"unknown organisation {org_id}")
        endpoint = await session.alerts.create_endpoint(
            org_id=org_id, url=url, secret=secret, created_by=actor.subject
        )
        await session.audit.record(
            actor.entry("alert_endpoint.create", endpoint.id, org_id=org_id, details={"url": url})
        )
    return endpoint


async def remove_endpoint(session: Session, actor: Actor, endpoint_id: UUID) -> DeletedEndpoint:
    async with session.transaction():
        gone = await session.alerts.delete_endpoint(endpoint_id)
        if gone is None:
            raise NotFound(f"no alert endpoint {endpoint_id}")
        await session.audit.record(
            actor.entry(
                "alert_endpoint.delete",
                endpoint_id,
                org_id=gone.org_id,
                details={"url": gone.url, "cancelledDeliveries": gone.cancelled},
            )
        )
    return gone


async def add_rule(session: Session, actor: Actor, request: RuleRequest) -> Rule:
    params = checks.rule_params(request.kind, request.points, request.days)
    emails = checks.check_emails(request.emails)
    endpoint_ids = list(dict.fromkeys(request.endpoint_ids))
    checks.check_endpoint_count(len(endpoint_ids))
    if (request.tenant_id is None) == (request.org_id is None):
        raise InvalidInput("a rule watches one tenant or one organisation: give tenantId or orgId")
    async with session.transaction():
        rule_org = await _rule_owner(session, actor.own_org, request.tenant_id, request.org_id)
        await _check_endpoints(session, endpoint_ids, rule_org)
        await _refuse_a_repeat(session, request, params, endpoint_ids, emails, actor.own_org)
        rule = await session.alerts.create_rule(
            NewRule(
                scope="tenant" if request.tenant_id is not None else "org",
                org_id=request.org_id,
                tenant_id=request.tenant_id,
                kind=request.kind,
                params=params,
                endpoint_ids=endpoint_ids,
                emails=emails,
                created_by=actor.subject,
                owner_org=actor.own_org,  # None for an administrator: its rule stays on a move
            )
        )
        details = {
            "kind": rule.kind,
            "params": params,
            "endpointIds": [str(e) for e in endpoint_ids],
            "emails": emails,
        }
        await session.audit.record(
            actor.entry(
                "alert_rule.create",
                rule.id,
                org_id=rule_org,
                tenant_id=request.tenant_id,
                details=details,
            )
        )
    return rule


async def remove_rule(session: Session, actor: Actor, rule_id: UUID) -> Rule:
    async with session.transaction():
        gone = await session.alerts.delete_rule(rule_id)
        if gone is None:
            raise NotFound(f"no alert rule {rule_id}")
        await session.audit.record(
            actor.entry(
                "alert_rule.delete",
                rule_id,
                org_id=gone.org_id,
                tenant_id=gone.tenant_id,
                details={"kind": gone.kind, "params": plain(gone.params)},
            )
        )
    return gone


ADMIN_MAKER = "administrator"


def maker_seen_by(rule: Rule, viewer_role: str) -> str:
    """Who made the rule, as this viewer may read it: an administrator's rule is made by
    `administrator` to anyone but an administrator (its maker is an operator's account,
    `cli:root`, or an administrator's key)."""
    if viewer_role == "admin" or rule.owner_org is not None:
        return rule.created_by
    return ADMIN_MAKER


async def _refuse_a_repeat(
    session: Session,
    request: RuleRequest,
    params: dict[str, Any],
    endpoint_ids: list[UUID],
    emails: list[str],
    owner: UUID | None,
) -> None:
    """A second rule watching the same thing for the same crossing and telling one of the
    same channels would raise every alert twice, and send it twice under two webhook-ids a
    receiver cannot tell apart: Conflict naming the rule there is. A rule that tells no
    channel (the feed only) beside one of the same maker's that does, either way round,
    adds only a second copy of each alert to the feed: a repeat too (an organisation may
    still add its channels beside an administrator's feed-only rule it cannot remove)."""
    await session.alerts.lock_rule_watch(request.tenant_id, request.org_id, request.kind)
    channels = {str(e) for e in endpoint_ids} | {f"mailto:{m.lower()}" for m in emails}
    for rule in await session.alerts.rules(org_id=request.org_id, tenant_id=request.tenant_id):
        same_watch = (rule.tenant_id, rule.org_id, rule.kind) == (
            request.tenant_id,
            request.org_id,
            request.kind,
        )
        if not same_watch or plain(rule.params) != params:
            continue
        theirs = {str(e) for e in rule.endpoint_ids} | {f"mailto:{m.lower()}" for m in rule.emails}
        shared = sorted(channels & theirs)
        feed_only = not channels or not theirs
        if shared or not (channels or theirs) or (feed_only and rule.owner_org == owner):
            told = ", ".join(c.removeprefix("mailto:") for c in shared or sorted(theirs))
            raise Conflict(
                f"alert rule {rule.id} already raises {request.kind} for the same"
                f" {'tenant' if request.tenant_id else 'organisation'} and tells"
                f" {told or 'the feed only'}: a second one would"
                f" {'send' if shared else 'raise'} each alert twice (delete it first to"
                " change it)"
            )


async def _rule_owner(
    session: Session, own_org: UUID | None, tenant_id: UUID | None, org_id: UUID | None
) -> UUID | None:
    """The organisation the rule belongs to, after checking the caller may watch it."""
    if tenant_id is not None:
        tenant = await session.alerts.tenant(tenant_id)
        if tenant is None:
            where = " in your organisation" if own_org is not None else ""
            raise NotFound(f"unknown tenant {tenant_id}{where}")
        return tenant.org_id
    assert org_id is not None
    if own_org is not None and org_id != own_org:
        raise NotAllowed(f"organisation {org_id} is not yours: rules may watch {own_org}")
    if await session.organizations.get(org_id) is None:
        raise NotFound(f"unknown organisation {org_id}")
    return org_id


async def _check_endpoints(session: Session, ids: list[UUID], rule_org: UUID | None) -> None:
    if not ids:
        return
    found = {e.id: e for e in await session.alerts.endpoints_by_id(ids)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"unknown alert endpoints: {', '.join(missing)}")
    for endpoint in found.values():
        if endpoint.org_id is not None and endpoint.org_id != rule_org:
            raise InvalidInput(
                f"endpoint {endpoint.id} belongs to another organisation than the rule's"
            )
