"""What the dashboard reads across tables: fleet pages and totals, failures, one dealership."""

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal, get_args
from uuid import UUID

from aoer.constants import MEDIAN_MIN_PEERS, NO_DATA, RECOMPUTE_EVENT
from aoer.store.statements import Statements
from aoer.types import Grade, JsonObject, RiskLevel

SortKey = Literal["score", "risk", "name", "updated", "change7d"]
SORT_KEYS: Final[tuple[str, ...]] = get_args(SortKey)
ASCENDING_FIRST: Final = ("name", "change7d")  # the first click: A to Z, the largest drops
# Sorting by the 7-day change probes each matching dealership's events (0.15-0.2 s for
# 20,000 on the development host; an organisation's 2,000 in ~0.1 s under its Row Level
# Security): offered up to this many matching dealerships.
FLEET_CHANGE_SORT_MAX: Final = 20_000
NEVER_COMPUTED: Final = "none"  # the grade filter's value for dealerships without a summary


def sorted_descending(sort: str, order: str | None) -> bool:
    """`order` (`asc`, `desc`) when given, else the key's first click (ASCENDING_FIRST)."""
    if order in ("asc", "desc"):
        return order == "desc"
    return sort not in ASCENDING_FIRST


@dataclass(frozen=True, slots=True)
class FleetFilter:
    """A validated fleet query: every field comes from a whitelist or is a plain value."""

    name: str | None = None
    grade: str | None = None
    risk_level: str | None = None
    sort: SortKey = "risk"
    descending: bool = True
    page: int = 1
    per_page: int = 50
    org_id: UUID | None = None  # one organisation's dealerships only


@dataclass(frozen=True, slots=True)
class FleetRow:
    tenant_id: UUID
    name: str
    city: str | None
    active: bool
    aoer_score: Decimal | None
    visibility_risk: Decimal | None
    grade: Grade | None
    risk_level: RiskLevel | None
    last_updated: datetime | None
    change_7d: Decimal | None  # the score now minus the score as of 7 days ago (or none)


@dataclass(frozen=True, slots=True)
class FleetPage:
    rows: list[FleetRow]
    matching: int
    filter: FleetFilter  # as applied: by risk when the 7-day change was refused
    change_sort_refused: bool = False  # asked to sort by the 7-day change, too many matched

    @property
    def change_sort_max(self) -> int:
        return FLEET_CHANGE_SORT_MAX

    @property
    def change_sortable(self) -> bool:
        return self.matching <= FLEET_CHANGE_SORT_MAX

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // self.filter.per_page))


@dataclass(frozen=True, slots=True)
class FleetTotals:
    tenants: int
    inactive: int  # counted in `tenants` alone: the rest is over the active ones
    computed: int
    no_data: int  # computed from no signal in the window: left out of the mean and levels
    mean_score: Decimal | None
    low: int
    medium: int
    high: int
    critical: int

    @property
    def by_risk(self) -> dict[str, int]:
        """Dealerships per risk level, in the levels' order, then those with no data."""
        return {
            "Low": self.low,
            "Medium": self.medium,
            "High": self.high,
            "Critical": self.critical,
            NO_DATA: self.no_data,
        }


@dataclass(frozen=True, slots=True)
class Failure:
    created_at: datetime
    tenant_id: UUID
    name: str
    error_message: str
    retry_count: int
    will_retry: bool


@dataclass(frozen=True, slots=True)
class TenantRow:
    """One dealership with its summary (None fields when never computed) and its data."""

    tenant_id: UUID
    name: str
    domain: str | None
    city: str | None
    region: str | None
    active: bool
    aoer_score: Decimal | None
    visibility_risk: Decimal | None
    grade: Grade | None
    risk_level: RiskLevel | None
    last_updated: datetime | None
    metrics: JsonObject  # {} when never computed
    signal_rows: int
    last_signal_date: date | None


def _filter_params(f: FleetFilter) -> dict[str, object]:
    return {"name": f.name, "grade": f.grade, "risk_level": f.risk_level, "org_id": f.org_id}


class Fleet(Statements):
    async def page(self, f: FleetFilter) -> FleetPage:
        """One sorted, filtered page of dealerships and how many match in all. By the 7-day
        change only up to FLEET_CHANGE_SORT_MAX matching (else by risk, saying so)."""
        matching = await self._int("fleet_count", _filter_params(f))
        refused = f.sort == "change7d" and matching > FLEET_CHANGE_SORT_MAX
        if refused:
            f = replace(f, sort="risk", descending=True)
        params = {
            **_filter_params(f),
            "sort": f.sort,
            "descending": f.descending,
            "limit": f.per_page,
            "offset": (f.page - 1) * f.per_page,
            "event_type": RECOMPUTE_EVENT,
            "min_peers": MEDIAN_MIN_PEERS,
        }
        if f.sort != "change7d":
            rows = await self._all(FleetRow, "fleet_page", params)
        else:
            async with self.transaction():
                await self._run("fleet_without_jit")
                rows = await self._all(FleetRow, "fleet_page", params)
        return FleetPage(rows, matching, f, refused)

    async def totals(self, org_id: UUID | None = None) -> FleetTotals:
        """Over every visible dealership, or one organisation's."""
        found = await self._one(FleetTotals, "fleet_totals", {"org_id": org_id})
        assert found is not None  # an aggregate always returns one row
        return found

    async def recent_failures(self, limit: int) -> list[Failure]:
        return await self._all(Failure, "recent_failures", {"limit": limit})

    async def tenant(self, tenant_id: UUID) -> TenantRow | None:
        return await self._one(TenantRow, "tenant_view", {"tenant_id": tenant_id})
