"""`tenants`: register, list and look up dealerships; the demo fleet."""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from aoer.constants import RECOMPUTE_EVENT
from aoer.errors import AlreadyExists, DuplicateKey, InvalidInput, UnknownOrganization
from aoer.store.statements import Statements
from aoer.types import Tenant


@dataclass(frozen=True, slots=True)
class TenantMove:
    id: UUID
    old_org_id: UUID | None
    new_org_id: UUID | None


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
        if not name.strip():
            raise InvalidInput("tenant name must not be empty")
        params = {
            "id": tenant_id,
            "name": name.strip(),
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
        except DuplicateKey:
            raise AlreadyExists(f"a tenant with id {tenant_id} already exists") from None
        assert created is not None  # INSERT … RETURNING returns the row
        return created

    async def list(
        self, *, limit: int = 1000, offset: int = 0, org_id: UUID | None = None
    ) -> list[Tenant]:
        """Dealerships by name (under Row Level Security, only the caller's); `org_id`: only
        that organisation's."""
        params = {"tenant_id": None, "org_id": org_id, "limit": limit, "offset": offset}
        return await self._all(Tenant, "list_tenants", params)

    async def move(self, tenant_id: UUID, org_id: UUID | None) -> TenantMove | None:
        """Put the tenant into `org_id` (None: into none); None for an unknown tenant."""
        await self._known_org(org_id)
        return await self._one(
            TenantMove, "move_tenant", {"tenant_id": tenant_id, "org_id": org_id}
        )

    async def get(self, tenant_id: UUID) -> Tenant | None:
        params = {"tenant_id": tenant_id, "org_id": None, "limit": 1, "offset": 0}
        return await self._one(Tenant, "list_tenants", params)

    async def _known_org(self, org_id: UUID | None) -> None:
        if org_id is not None and not await self._value("org_exists", {"id": org_id}):
            raise UnknownOrganization(f"unknown organisation {org_id}")

    async def exists(self, tenant_id: UUID) -> bool:
        return bool(await self._value("tenant_exists", {"tenant_id": tenant_id}))

    async def name(self, tenant_id: UUID) -> str | None:
        value = await self._value("tenant_name", {"tenant_id": tenant_id})
        return str(value) if value is not None else None

    async def unknown(self, ids: Sequence[UUID]) -> set[UUID]:
        """The ids among `ids` that name no tenant (under Row Level Security: none of the
        caller's)."""
        found = await self._values("unknown_tenants", {"ids": list(ids)})
        return {tenant_id for tenant_id in found if isinstance(tenant_id, UUID)}

    async def add_demo(
        self, ids: Sequence[UUID], names: Sequence[str], cities: Sequence[str]
    ) -> None:
        """The demo dealerships, their signals and a score history (idempotent)."""
        async with self.transaction():
            params = {"ids": list(ids), "names": list(names), "cities": list(cities)}
            await self._run("demo_tenants", params)
            await self._run("demo_history", {"ids": list(ids), "event_type": RECOMPUTE_EVENT})
