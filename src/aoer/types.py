"""The orchestrator's vocabulary: priorities, job states and the rows that cross the db boundary."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

R = TypeVar("R")

Priority = Literal["low", "medium", "high", "urgent"]
JobStatus = Literal["queued", "processing", "completed", "failed"]
# "No data": computed from no signal in the score window; the stored v1 values (0.00 and 1.00,
# DESIGN §3) stay, but grading them "Poor"/"Critical" would put them with invisible dealers.
Grade = Literal["Excellent", "Good", "Fair", "Poor", "No data"]
RiskLevel = Literal["Low", "Medium", "High", "Critical", "No data"]
JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EnqueuedJob:
    id: UUID
    tenant_id: UUID
    priority: Priority
    status: JobStatus
    coalesced: bool


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: UUID
    tenant_id: UUID
    priority: Priority
    retry_count: int
    max_retries: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CompletedJob:
    id: UUID
    tenant_id: UUID
    priority: Priority
    aoer_score: Decimal
    visibility_risk: Decimal
    latency_ms: float
    # The summary this recompute replaced (None on the first) and the new data's age: what
    # the batch's alerts compare.
    previous_score: Decimal | None = None
    previous_risk: Decimal | None = None
    days_since_last_data: int | None = None


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    id: UUID
    tenant_id: UUID
    status: JobStatus
    retry_count: int
    scheduled_at: datetime
    error_message: str


@dataclass(frozen=True, slots=True)
class ReclaimedJob:
    """A job taken back from a worker whose lease expired."""

    id: UUID
    tenant_id: UUID
    status: JobStatus
    error_message: str


@dataclass(frozen=True, slots=True)
class Score:
    """A stored recompute: the new summary, the one it replaced (`previous`: aoerScore,
    visibilityRisk, modelVersion) and the delta split into parts (`change`, DESIGN §13);
    both None on a tenant's first recompute."""

    tenant_id: UUID
    aoer_score: Decimal
    visibility_risk: Decimal
    metrics: JsonObject
    previous: JsonObject | None = None
    change: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """A stored summary and what GET /api/aoer/summary adds to it (DESIGN §13): the split of
    the last change, the 7- and 30-day changes, the weights of the model that scored it and
    the medians it is compared with (`benchmark`: scope, tenants, avgAEO, ..., volatility)."""

    tenant_id: UUID
    aoer_score: Decimal
    visibility_risk: Decimal
    grade: Grade
    risk_level: RiskLevel
    last_updated: datetime
    metrics: JsonObject
    change: JsonObject | None = None
    change_7d: Decimal | None = None
    change_30d: Decimal | None = None
    weights: JsonObject | None = None
    benchmark: JsonObject | None = None
    # The last recompute within LAST_MOVE_DAYS that changed the score: {at, previousScore,
    # aoerScore, change} (the last recompute itself may have changed nothing).
    last_move: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class QueueStatus:
    pending: int
    processing: int
    completed: int
    failed: int


@dataclass(frozen=True, slots=True)
class QueueDepth:
    status: JobStatus
    priority: Priority
    jobs: int
    oldest_age_s: float | None


@dataclass(frozen=True, slots=True)
class Throughput:
    last_minute: int
    last_hour: int


@dataclass(frozen=True, slots=True)
class Tenant:
    id: UUID
    name: str
    domain: str | None
    city: str | None
    region: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    org_id: UUID | None = None  # the organisation holding it (DESIGN §12); None: none


@dataclass(frozen=True, slots=True)
class ScorePoint:
    """One recompute in a tenant's score history."""

    created_at: datetime
    aoer_score: Decimal
    visibility_risk: Decimal
    grade: Grade
    risk_level: RiskLevel
    metrics: JsonObject
    priority: Priority | None  # the job's; None for backfilled and out-of-queue recomputes


@dataclass(frozen=True, slots=True)
class Tick:
    """A scheduler tick that fired."""

    tick: datetime
    fired_at: datetime
    fired_by: str
    result: JsonObject | None


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """One page of a keyset-paged list, newest first, and whether an older page follows (read
    as one row more than the page: a full last page has none after it)."""

    rows: list[R]
    more: bool

    @classmethod
    def of(cls, rows: list[R], limit: int) -> "Page[R]":
        """The page from a read of `limit` + 1 rows."""
        return cls(rows[:limit], len(rows) > limit)

    @property
    def last(self) -> R | None:
        """The row the next page starts after; None on the last page."""
        return self.rows[-1] if self.more and self.rows else None
