"""What the dashboard shows, read from PostgreSQL into typed rows (SQL in `dashboard.sql`)."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal, cast, get_args
from uuid import UUID

from aoer import queue
from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.types import Grade, JsonObject, QueueDepth, QueueStatus, RiskLevel, Throughput

SortKey = Literal["score", "risk", "name", "updated"]
SORT_KEYS: Final[tuple[str, ...]] = get_args(SortKey)
GRADES: Final[tuple[str, ...]] = get_args(Grade)
RISK_LEVELS: Final[tuple[str, ...]] = get_args(RiskLevel)
NEVER_COMPUTED: Final = "none"  # the grade filter's value for dealerships without a summary
RECENT_EVENTS: Final = 10
RECENT_FAILURES: Final = 10


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


@dataclass(frozen=True, slots=True)
class FleetPage:
    rows: list[FleetRow]
    matching: int
    filter: FleetFilter

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // self.filter.per_page))


@dataclass(frozen=True, slots=True)
class FleetTotals:
    tenants: int
    computed: int
    mean_score: Decimal | None
    by_risk: dict[str, int]


@dataclass(frozen=True, slots=True)
class Failure:
    created_at: datetime
    tenant_id: UUID
    name: str
    error_message: str
    retry_count: int
    will_retry: bool


@dataclass(frozen=True, slots=True)
class Tick:
    tick: datetime
    fired_at: datetime
    fired_by: str
    result: JsonObject


@dataclass(frozen=True, slots=True)
class FleetStats:
    totals: FleetTotals
    depth: list[QueueDepth]
    throughput: Throughput
    failures: list[Failure]
    last_tick: Tick | None


@dataclass(frozen=True, slots=True)
class RecentEvent:
    created_at: datetime
    aoer_score: Decimal | None
    visibility_risk: Decimal | None
    priority: str | None


@dataclass(frozen=True, slots=True)
class TenantView:
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
    metrics: JsonObject
    signal_rows: int
    last_signal_date: date | None
    queue_status: QueueStatus
    events: list[RecentEvent]

    @property
    def computed(self) -> bool:
        return self.aoer_score is not None


def _filter_params(f: FleetFilter) -> dict[str, object]:
    return {"name": f.name, "grade": f.grade, "risk_level": f.risk_level}


async def fleet_page(conn: Connection, f: FleetFilter) -> FleetPage:
    """One sorted, filtered page of dealerships and how many match in all."""
    params = {
        **_filter_params(f),
        "sort": f.sort,
        "descending": f.descending,
        "limit": f.per_page,
        "offset": (f.page - 1) * f.per_page,
    }
    cur = await conn.execute(query("dashboard_fleet_page"), params)
    rows = [FleetRow(**cast(JsonObject, r)) for r in await cur.fetchall()]
    cur = await conn.execute(query("dashboard_fleet_count"), _filter_params(f))
    counted = await cur.fetchone()
    return FleetPage(rows, cast(int, counted["matching"]) if counted else 0, f)


async def fleet_stats(conn: Connection, tick_name: str) -> FleetStats:
    """Totals, queue depth, throughput, recent failures and the last scheduler tick."""
    cur = await conn.execute(query("dashboard_fleet_totals"))
    t = await cur.fetchone()
    assert t is not None  # an aggregate always returns one row
    totals = FleetTotals(
        tenants=cast(int, t["tenants"]),
        computed=cast(int, t["computed"]),
        mean_score=cast(Decimal | None, t["mean_score"]),
        by_risk={level: cast(int, t[level.lower()]) for level in RISK_LEVELS},
    )
    cur = await conn.execute(query("dashboard_recent_failures"), {"limit": RECENT_FAILURES})
    failures = [Failure(**cast(JsonObject, r)) for r in await cur.fetchall()]
    cur = await conn.execute(query("dashboard_last_tick"), {"name": tick_name})
    tick = await cur.fetchone()
    return FleetStats(
        totals=totals,
        depth=await queue.queue_depth(conn),
        throughput=await queue.throughput(conn),
        failures=failures,
        last_tick=Tick(**cast(JsonObject, tick)) if tick else None,
    )


async def tenant_view(conn: Connection, tenant_id: UUID) -> TenantView | None:
    """One dealership's page data, or None when no such dealership is visible."""
    cur = await conn.execute(query("dashboard_tenant"), {"tenant_id": tenant_id})
    row = await cur.fetchone()
    if row is None:
        return None
    cur = await conn.execute(
        query("dashboard_recent_events"), {"tenant_id": tenant_id, "limit": RECENT_EVENTS}
    )
    events = [RecentEvent(**cast(JsonObject, r)) for r in await cur.fetchall()]
    fields = cast(JsonObject, row)
    return TenantView(
        **{**fields, "metrics": fields["metrics"] or {}},
        queue_status=await queue.tenant_queue_status(conn, tenant_id),
        events=events,
    )
