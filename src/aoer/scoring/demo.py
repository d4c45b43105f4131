"""Demo dealerships for `aoer up --demo`: a newcomer sees scores, trends and risk at once."""

from dataclasses import dataclass
from uuid import UUID, uuid5

from aoer.scoring.demo_observations import load_demo_observations
from aoer.store import Session

DEMO_NAMESPACE = UUID("5e0d1c55-a0e2-4c5b-9a52-6f1d7d3b0a01")
DEMO_DEALERS: tuple[tuple[str, str], ...] = (
    ("Riverside Honda", "Portland"),
    ("Summit Ford", "Denver"),
    ("Bayview Toyota", "San Diego"),
    ("Lakeshore Chevrolet", "Chicago"),
    ("Magnolia Kia", "Austin"),
    ("Granite State Subaru", "Manchester"),
    ("Desert Sun Nissan", "Phoenix"),
    ("Harbor City Hyundai", "Baltimore"),
    ("Bluegrass Mazda", "Lexington"),
    ("Evergreen Volkswagen", "Seattle"),
    ("Peachtree BMW", "Atlanta"),
    ("Gateway Jeep", "St. Louis"),
)


# Two demo organisations (DESIGN §12): a dealer group with most rooftops, an agency with the
# rest; `aoer up --demo` prints a login link for the dealer group.
DEMO_ORGS: tuple[tuple[str, int], ...] = (
    ("Northwind Auto Group", 7),  # a dealer group: the first seven dealerships
    ("Brightline Digital Agency", 5),  # an agency: the other five
)


@dataclass(frozen=True, slots=True)
class DemoOrg:
    id: UUID
    name: str
    dealerships: int


def demo_tenant_ids() -> list[UUID]:
    return [uuid5(DEMO_NAMESPACE, name) for name, _ in DEMO_DEALERS]


async def load_demo(session: Session) -> list[UUID]:
    """Create the demo dealerships, their signals, score history and answer-engine
    observations (idempotent); their ids."""
    ids = demo_tenant_ids()
    await session.tenants.add_demo(
        ids, [name for name, _ in DEMO_DEALERS], [city for _, city in DEMO_DEALERS]
    )
    # A demo name another dealership already holds is skipped (names are unique).
    skipped = await session.tenants.unknown(ids)
    dealers = [
        (i, name, city)
        for i, (name, city) in zip(ids, DEMO_DEALERS, strict=True)
        if i not in skipped
    ]
    await load_demo_observations(session, dealers)
    return [tenant_id for tenant_id, _, _ in dealers]


async def load_demo_orgs(session: Session, tenant_ids: list[UUID]) -> list[DemoOrg]:
    """The demo organisations, each holding its share of the demo dealerships. Idempotent: an
    existing organisation of the same name is kept as it is (with whatever it holds now)."""
    found: list[DemoOrg] = []
    start = 0
    async with session.transaction():
        for name, share in DEMO_ORGS:
            owned = tenant_ids[start : start + share]
            start += share
            org = await session.organizations.named(name)
            if org is None:
                org = await session.organizations.create(name)
                for tenant_id in owned:
                    await session.tenants.move(tenant_id, org.id)
            found.append(DemoOrg(org.id, org.name, len(owned)))
    return found
