"""`tenants`: register, list and look up dealerships; the demo fleet."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

from aoer.constants import RECOMPUTE_EVENT, SUMMARY_CHANNEL
from aoer.errors import AlreadyExists, DuplicateKey, InvalidInput, UnknownOrganization
from aoer.store.audit import AuditEntry
from aoer.store.statements import Statements
from aoer.types import Tenant

MAX_DOMAIN_CHARS = 253  # RFC 1035, without the root's trailing dot
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TOP_LEVEL = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
NAME_INDEX = "tenants_name_key"  # migration 0016


def host_name(text: str) -> str:
    """A dealership's web domain as stored: a lower-case host name ("www.dealer-one.co.uk").

    A bare http(s) URL of a site ("https://Dealer.com/") is reduced to its host; a page's URL
    (a path, a query), a port, spaces or a single label ("localhost") are refused with a
    ValueError that says why. Internationalised names are stored in their ASCII (punycode) form.
    """
    domain = text.strip()
    if "://" in domain:
        parts = urlsplit(domain)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(f"{text!r} is not a web domain: give a host name like example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{text!r} is a page, not a domain: give only its host name")
        if parts.port is not None or "@" in parts.netloc:
            raise ValueError(f"{text!r} names more than a domain: give only its host name")
        domain = parts.hostname or ""
    domain = domain.rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{text!r} is not a host name like example.com") from None
    labels = domain.split(".")
    if (
        len(domain) > MAX_DOMAIN_CHARS
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or not _TOP_LEVEL.match(labels[-1])
    ):
        raise ValueError(f"{text!r} is not a host name like example.com or www.dealer.co.uk")
    return domain


@dataclass(frozen=True, slots=True)
class TenantMove:
    id: UUID
    old_org_id: UUID | None
    new_org_id: UUID | None
    revoked_key_ids: list[UUID]  # its keys another organisation had issued, revoked with it
    deleted_rule_ids: list[UUID]  # the alert rules another organisation had made for it

    def audit_entries(self, actor: str, role: str, ip: str | None = None) -> list[AuditEntry]:
        """The move (tenant.move), each key revoked with it (key.revoke) and each alert rule
        deleted with it (alert_rule.delete), for whoever moved it: the API and the CLI
        record the same rows."""
        entries: list[AuditEntry] = []
        if self.old_org_id != self.new_org_id:  # a move to where it is records nothing
            entries.append(
                AuditEntry(
                    actor=actor,
                    role=role,
                    action="tenant.move",
                    org_id=self.new_org_id or self.old_org_id,
                    tenant_id=self.id,
                    target=str(self.id),
                    details={
                        "from": str(self.old_org_id) if self.old_org_id else None,
                        "to": str(self.new_org_id) if self.new_org_id else None,
                    },
                    ip=ip,
                )
            )
        # What left with it, each in the trail of the organisation it belonged to.
        gone = [
            *(("key.revoke", k, "the tenant left the organisation that issued the key")
              for k in self.revoked_key_ids),
            *(("alert_rule.delete", r, "the tenant left the organisation that made the rule")
              for r in self.deleted_rule_ids),
        ]  # fmt: skip
        for action, target, reason in gone:
            entries.append(
                AuditEntry(
                    actor=actor,
                    role=role,
                    action=action,
                    org_id=self.old_org_id,
                    tenant_id=self.id,
                    target=str(target),
                    details={"reason": reason},
                    ip=ip,
                )
            )
        return entries


@dataclass(frozen=True, slots=True)
class TenantChange:
    id: UUID
    org_id: UUID | None  # the organisation it is in, whose trail records the change
    old_name: str
    new_name: str
    was_active: bool
    is_active: bool
    cancelled_jobs: int  # its waiting job, cancelled when it is made inactive

    def audit_entry(self, actor: str, role: str, ip: str | None = None) -> AuditEntry:
        """The change as `tenant.change`, with what each changed field was and became."""
        details: dict[str, object] = {}
        if self.old_name != self.new_name:
            details["name"] = {"from": self.old_name, "to": self.new_name}
        if self.was_active != self.is_active:
            details["active"] = {"from": self.was_active, "to": self.is_active}
        if self.cancelled_jobs:
            details["cancelledJobs"] = self.cancelled_jobs
        return AuditEntry(
            actor=actor,
            role=role,
            action="tenant.change",
            org_id=self.org_id,
            tenant_id=self.id,
            target=str(self.id),
            details=details,
            ip=ip,
        )


@dataclass(frozen=True, slots=True)
class TenantOrg:
    tenant_id: UUID
    org_id: UUID


@dataclass(frozen=True, slots=True)
class TenantName:
    id: UUID
    name: str


class Tenants(Statements):
    async def create(
        self,
        name: str,
        *,
        tenant_id: UUID | None = None,
        domain: str | None = None,
        city: str | None = None,
        region: str | None = None,
        active: bool = True,
        org_id: UUID | None = None,
    ) -> Tenant:
        name = name.strip()
        if not name:
            raise InvalidInput("tenant name must not be empty")
        if domain is not None and domain.strip():
            try:
                domain = host_name(domain)
            except ValueError as exc:
                raise InvalidInput(f"invalid domain: {exc}") from None
        else:
            domain = None
        params = {
            "id": tenant_id,
            "name": name,
            "domain": domain,
            "city": city,
            "region": region,
            "active": active,
            "org_id": org_id,
        }
        try:
            async with self.transaction():
                await self._known_org(org_id)
                created = await self._one(Tenant, "create_tenant", params)
        except DuplicateKey as exc:
            if NAME_INDEX not in str(exc):
                raise AlreadyExists(f"a tenant with id {tenant_id} already exists") from None
            raise await self._name_taken(name) from None
        assert created is not None  # INSERT … RETURNING returns the row
        return created

    async def _name_taken(self, name: str) -> AlreadyExists:
        holder = await self._value("tenant_named", {"name": name})
        return AlreadyExists(
            f"a tenant named {name!r} already exists ({holder}); names are unique "
            "ignoring case and surrounding blanks"
        )

    async def list(
        self,
        *,
        limit: int = 1000,
        offset: int = 0,
        org_id: UUID | None = None,
        unassigned: bool = False,
    ) -> list[Tenant]:
        """Dealerships by name (under Row Level Security, only the caller's); `org_id`: only
        that organisation's; `unassigned`: only those in no organisation."""
        params = {
            "tenant_id": None,
            "org_id": org_id,
            "unassigned": unassigned,
            "limit": limit,
            "offset": offset,
        }
        return await self._all(Tenant, "list_tenants", params)

    async def move(self, tenant_id: UUID, org_id: UUID | None) -> TenantMove | None:
        """Put the tenant into `org_id` (None: into none); None for an unknown tenant. On
        commit every API process forgets the summary it cached (as after a recompute): its
        recommendations quote the old organisation's medians."""
        await self._known_org(org_id)
        moved = await self._one(
            TenantMove, "move_tenant", {"tenant_id": tenant_id, "org_id": org_id}
        )
        if moved is not None:
            params = {"channel": SUMMARY_CHANNEL, "tenant_ids": [tenant_id]}
            await self._run("notify_summaries", params)
        return moved

    async def change(
        self, tenant_id: UUID, *, name: str | None = None, active: bool | None = None
    ) -> TenantChange | None:
        """Rename it (names unique as at creation) or (de)activate it: an inactive tenant is
        left out of the scheduled refresh and refused new jobs. None for an unknown tenant."""
        if name is not None:
            name = name.strip()
            if not name:
                raise InvalidInput("tenant name must not be empty")
        params = {"tenant_id": tenant_id, "name": name, "active": active}
        try:
            async with self.transaction():
                return await self._one(TenantChange, "change_tenant", params)
        except DuplicateKey:
            assert name is not None  # only a new name can collide
            raise await self._name_taken(name) from None

    async def get(self, tenant_id: UUID) -> Tenant | None:
        params = {
            "tenant_id": tenant_id,
            "org_id": None,
            "unassigned": False,
            "limit": 1,
            "offset": 0,
        }
        return await self._one(Tenant, "list_tenants", params)

    async def _known_org(self, org_id: UUID | None) -> None:
        if org_id is not None and not await self._value("org_exists", {"id": org_id}):
            raise UnknownOrganization(f"unknown organisation {org_id}")

    async def named(self, text: str, limit: int) -> Sequence[TenantName]:
        """Dealerships named `text` (any case) first, then those whose name contains it."""
        return await self._all(TenantName, "tenants_named", {"text": text, "limit": limit})

    async def exists(self, tenant_id: UUID) -> bool:
        return bool(await self._value("tenant_exists", {"tenant_id": tenant_id}))

    async def name(self, tenant_id: UUID) -> str | None:
        value = await self._value("tenant_name", {"tenant_id": tenant_id})
        return str(value) if value is not None else None

    async def names_of(self, ids: Sequence[UUID]) -> dict[UUID, str]:
        """The names of these tenants, those the caller sees."""
        rows = await self._all(TenantName, "tenant_names", {"ids": list(ids)})
        return {row.id: row.name for row in rows}

    async def unknown(self, ids: Sequence[UUID]) -> set[UUID]:
        """The ids among `ids` that name no tenant (under Row Level Security: none of the
        caller's)."""
        found = await self._values("unknown_tenants", {"ids": list(ids)})
        return {tenant_id for tenant_id in found if isinstance(tenant_id, UUID)}

    async def orgs_of(self, ids: Sequence[UUID]) -> dict[UUID, UUID]:
        """The organisation of each of these tenants that is in one."""
        rows = await self._all(TenantOrg, "tenant_orgs", {"ids": list(ids)})
        return {row.tenant_id: row.org_id for row in rows}

    async def add_demo(
        self, ids: Sequence[UUID], names: Sequence[str], cities: Sequence[str]
    ) -> None:
        """The demo dealerships, their signals and a score history (idempotent)."""
        async with self.transaction():
            params = {"ids": list(ids), "names": list(names), "cities": list(cities)}
            await self._run("demo_tenants", params)
            await self._run("demo_history", {"ids": list(ids), "event_type": RECOMPUTE_EVENT})
