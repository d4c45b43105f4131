"""`organizations`: dealer groups and agencies that own tenants (DESIGN §12)."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from aoer.errors import AlreadyExists, DuplicateKey
from aoer.store.statements import Statements


@dataclass(frozen=True, slots=True)
class Organization:
    id: UUID
    name: str
    created_at: datetime
    tenants: int = 0


@dataclass(frozen=True, slots=True)
class TenantOrg:
    org_id: UUID | None


class Organizations(Statements):
    async def create(self, name: str) -> Organization:
        """A new organisation; `AlreadyExists` (naming it) when the name, ignoring case and
        surrounding blanks, is taken."""
        try:
            async with self.transaction():
                row = await self._one(Organization, "create_organization", {"name": name})
        except DuplicateKey:
            raise AlreadyExists(f"an organisation named {name.strip()!r} already exists") from None
        assert row is not None
        return row

    async def all(self) -> list[Organization]:
        return await self._all(Organization, "list_organizations")

    async def named(self, name: str) -> Organization | None:
        """The organisation with this name, ignoring case and surrounding blanks."""
        return await self._one(Organization, "organization_named", {"name": name})

    async def get(self, org_id: UUID) -> Organization | None:
        return await self._one(Organization, "get_organization", {"id": org_id})

    async def of_tenant(self, tenant_id: UUID) -> TenantOrg | None:
        """The tenant's organisation (`org_id` None: in none); None for an unknown tenant."""
        return await self._one(TenantOrg, "tenant_org", {"tenant_id": tenant_id})
