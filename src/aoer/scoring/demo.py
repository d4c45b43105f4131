"""Demo dealerships for `aoer up --demo`: a newcomer sees scores, trends and risk at once."""

from uuid import UUID, uuid5

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


def demo_tenant_ids() -> list[UUID]:
    return [uuid5(DEMO_NAMESPACE, name) for name, _ in DEMO_DEALERS]


async def load_demo(session: Session) -> list[UUID]:
    """Create the demo dealerships, their signals and score history (idempotent); their ids."""
    ids = demo_tenant_ids()
    await session.tenants.add_demo(
        ids, [name for name, _ in DEMO_DEALERS], [city for _, city in DEMO_DEALERS]
    )
    # A demo name another dealership already holds is skipped (names are unique).
    skipped = await session.tenants.unknown(ids)
    return [tenant_id for tenant_id in ids if tenant_id not in skipped]
