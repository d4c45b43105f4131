"""`aoer_summary` and the `aoer_recompute` rows of `metrics_events`: scores and their history."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from aoer.constants import LAST_MOVE_DAYS, MEDIAN_MIN_PEERS, RECOMPUTE_EVENT
from aoer.store.statements import Statements
from aoer.types import Grade, JsonObject, RiskLevel, Score, ScorePoint, Summary

HISTORY_LIMIT = 5000  # points per history read


@dataclass(frozen=True, slots=True)
class _SummaryRow:
    """A tenant with its summary; NULL columns when it was never computed."""

    tenant_id: UUID
    aoer_score: Decimal | None
    visibility_risk: Decimal | None
    last_updated: datetime | None
    metrics: JsonObject | None
    grade: Grade | None
    risk_level: RiskLevel | None
    change: JsonObject | None
    change_7d: Decimal | None
    change_30d: Decimal | None
    weights: JsonObject | None
    benchmark: JsonObject | None
    last_move: JsonObject | None


@dataclass(frozen=True, slots=True)
class SummaryLookup:
    tenant_found: bool
    summary: Summary | None


@dataclass(frozen=True, slots=True)
class RecentEvent:
    created_at: datetime
    aoer_score: Decimal | None
    visibility_risk: Decimal | None
    priority: str | None
    has_data: bool


class Scores(Statements):
    async def recompute(self, tenant_ids: Iterable[UUID]) -> list[Score]:
        """Compute and store these tenants' summaries in one statement (outside the queue)."""
        async with self.transaction():
            return await self._all(Score, "recompute_tenants", {"tenant_ids": list(tenant_ids)})

    async def summary(self, tenant_id: UUID) -> SummaryLookup:
        """The tenant's summary; tells a tenant never computed from one that does not exist
        (or, under Row Level Security, is not the caller's)."""
        params = {
            "tenant_id": tenant_id,
            "event_type": RECOMPUTE_EVENT,
            "min_peers": MEDIAN_MIN_PEERS,
            "move_days": LAST_MOVE_DAYS,
        }
        row = await self._one(_SummaryRow, "summary", params)
        if row is None:
            return SummaryLookup(False, None)
        if (
            row.aoer_score is None
            or row.visibility_risk is None
            or row.last_updated is None
            or row.grade is None
            or row.risk_level is None
        ):
            return SummaryLookup(True, None)
        summary = Summary(
            tenant_id=row.tenant_id,
            aoer_score=row.aoer_score,
            visibility_risk=row.visibility_risk,
            grade=row.grade,
            risk_level=row.risk_level,
            last_updated=row.last_updated,
            metrics=row.metrics or {},
            change=row.change,
            change_7d=row.change_7d,
            change_30d=row.change_30d,
            weights=row.weights,
            benchmark=row.benchmark,
            last_move=row.last_move,
        )
        return SummaryLookup(True, summary)

    async def summaries(self, tenant_ids: Sequence[UUID]) -> list[Summary]:
        """The computed summaries among these tenants."""
        params = {
            "tenant_ids": list(tenant_ids),
            "event_type": RECOMPUTE_EVENT,
            "min_peers": MEDIAN_MIN_PEERS,
            "move_days": LAST_MOVE_DAYS,
        }
        return await self._all(Summary, "summaries", params)

    async def refresh_medians(self) -> int:
        """Replace the snapshot of component medians (fleet and organisations); rows written."""
        async with self.transaction():
            return await self._int("refresh_component_medians")

    async def recomputed_before(self, tenant_id: UUID, at: datetime) -> bool:
        """Whether the tenant has a recompute event before `at`."""
        params = {"tenant_id": tenant_id, "at": at, "event": RECOMPUTE_EVENT}
        return bool(await self._value("recomputed_before", params))

    async def history(
        self, tenant_id: UUID, days: int, limit: int = HISTORY_LIMIT
    ) -> list[ScorePoint]:
        """One point per recompute over the last `days` days, oldest first."""
        params = {
            "tenant_id": tenant_id,
            "days": days,
            "limit": limit,
            "event_type": RECOMPUTE_EVENT,
        }
        return await self._all(ScorePoint, "score_history", params)

    async def recent_events(self, tenant_id: UUID, limit: int) -> list[RecentEvent]:
        """The tenant's latest recomputes, newest first."""
        params = {"tenant_id": tenant_id, "limit": limit, "event_type": RECOMPUTE_EVENT}
        return await self._all(RecentEvent, "recent_events", params)
