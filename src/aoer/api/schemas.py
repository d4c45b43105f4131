"""Request and response bodies, camelCase on the wire as the seed's clients expect (DESIGN §6)."""

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from aoer.constants import DEFAULT_PRIORITY
from aoer.scoring.observations import ObservationRow
from aoer.scoring.recommendations import recommend
from aoer.scoring.rows import as_sent_at_most, storable
from aoer.scoring.signals import SignalRow
from aoer.store.tenants import host_name
from aoer.types import Grade, JobStatus, Priority, QueueStatus, RiskLevel, Summary

MAX_SIGNAL_ROWS = 10_000  # rows per POST /api/signals
MAX_OBSERVATION_ROWS = 10_000  # rows per POST /api/observations
MAX_HISTORY_DAYS = 400  # the default retention of metrics_events
DEFAULT_HISTORY_DAYS = 30


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    @classmethod
    def of(cls, source: object) -> Self:
        """This response model read from a core dataclass with the same field names (nested
        dataclasses included), instead of copying field by field."""
        return cls.model_validate(source, from_attributes=True)


class StrictCamel(Camel):
    """A request body: unknown fields are errors, so a misspelt field is never ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# -- errors -------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    error: str = Field(description="What went wrong, in words")


class ValidationIssue(BaseModel):
    row: int | None = Field(
        default=None, description="Index of the offending row in `signals` (POST /api/signals)"
    )
    field: str
    message: str


class ValidationErrorOut(BaseModel):
    error: str
    errors: list[ValidationIssue]
    errorCount: int | None = Field(  # the wire name
        default=None, description="Total number of errors when the list was cut short"
    )


# -- queue --------------------------------------------------------------------------------


class QueueRequest(StrictCamel):
    tenant_id: UUID
    priority: Priority = DEFAULT_PRIORITY


class QueuedJobOut(Camel):
    success: bool
    job_id: UUID
    tenant_id: UUID
    priority: Priority
    status: JobStatus
    coalesced: bool = Field(description="True when the tenant's waiting job was reused")


class QueueStatusOut(Camel):
    pending: int
    processing: int
    completed: int
    failed: int


class TenantQueueOut(Camel):
    tenant_id: UUID
    queue_status: QueueStatusOut


class CronOut(Camel):
    success: bool
    queued: int


# -- summaries and history ----------------------------------------------------------------


class RecommendationOut(Camel):
    id: str = Field(
        description="The rule: no_data, stale_data, few_data_points, "
        "high_volatility, weakest_component (README, Recommendations)"
    )
    severity: Literal["critical", "warning", "info"]
    message: str
    component: str | None = None
    expected_gain: float | None = Field(
        default=None, description="Points the score would gain (exact, 2 decimals)"
    )


class SummaryOut(Camel):
    tenant_id: UUID
    aoer_score: float = Field(ge=0, le=100)
    visibility_risk: float = Field(ge=0, le=1)
    grade: Grade
    risk_level: RiskLevel
    last_updated: datetime
    metrics: dict[str, Any]
    change: dict[str, float] | None = Field(
        default=None,
        description="The last recompute's score delta split into parts (one per weighted "
        "component, volatility, model, rounding) adding up to the delta to the cent",
    )
    # Named as the body names them (summary_json): the camel-case generator would make
    # them change7D and change30D, and a client generated from the document lost them.
    change7d: float | None = Field(
        default=None, alias="change7d", description="Score now minus 7 days ago"
    )
    change30d: float | None = Field(
        default=None, alias="change30d", description="Score now minus 30 days ago"
    )
    last_move: dict[str, Any] | None = Field(
        default=None,
        description="The last recompute of the last 30 days that changed the score (the last "
        "recompute may have changed nothing): `{at, previousScore, aoerScore, change}`, "
        "`change` split as above",
    )
    recommendations: list[RecommendationOut] = Field(default_factory=list)


class HistoryPoint(Camel):
    created_at: datetime
    aoer_score: float
    visibility_risk: float
    grade: Grade
    risk_level: RiskLevel
    metrics: dict[str, Any]
    priority: Priority | None = Field(
        default=None, description="The recompute job's priority (none for backfilled points)"
    )


class MarkerOut(Camel):
    at: datetime
    kind: Literal["model", "alert"]
    label: str
    detail: str


class HistoryOut(Camel):
    tenant_id: UUID
    days: int
    history: list[HistoryPoint]
    markers: list[MarkerOut] = Field(
        default_factory=list,
        description="Events to mark on the trend over the same days, oldest first: model "
        "promotions and rollbacks (`kind` model), alerts (`kind` alert)",
    )


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def plain_numbers(value: Any) -> Any:
    """jsonb read with exact decimals, as JSON numbers (pydantic would write strings)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


def dump_json(body: dict[str, Any]) -> bytes:
    """Compact JSON; exact decimals become JSON numbers (clients read 60.00 as 60)."""
    return json.dumps(body, default=_plain, separators=(",", ":"), ensure_ascii=False).encode()


def summary_json(summary: Summary) -> bytes:
    """The body of GET /api/aoer/summary and of the SSE `summary` event (cached as bytes)."""
    return dump_json(
        {
            "tenantId": str(summary.tenant_id),
            "aoerScore": summary.aoer_score,
            "visibilityRisk": summary.visibility_risk,
            "grade": summary.grade,
            "riskLevel": summary.risk_level,
            "lastUpdated": summary.last_updated.isoformat(),
            "metrics": summary.metrics,
            "change": summary.change,
            "change7d": summary.change_7d,
            "change30d": summary.change_30d,
            "lastMove": summary.last_move,
            "recommendations": [r.as_json() for r in recommend(summary)],
        }
    )


def queue_status_json(status: QueueStatus) -> bytes:
    return dump_json(QueueStatusOut.of(status).model_dump(by_alias=True))


# -- alerts -------------------------------------------------------------------------------


class DeliveryOut(Camel):
    id: UUID
    endpoint_id: UUID | None
    email: str | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class AlertOut(Camel):
    id: UUID
    kind: str
    tenant_id: UUID
    rule_id: UUID | None
    created_at: datetime
    data: dict[str, Any]
    deliveries: list[DeliveryOut]

    @field_validator("data")
    @classmethod
    def _numbers(cls, value: dict[str, Any]) -> Any:
        return plain_numbers(value)  # scores as JSON numbers, not strings


class AlertsOut(Camel):
    alerts: list[AlertOut]
    next_before: str | None = Field(
        default=None, description="Pass as `before` for the next page; null on the last one"
    )


def alert_json(alert: AlertOut) -> bytes:
    """An alert as GET /api/alerts lists it, for the SSE `alert` event."""
    return dump_json(alert.model_dump(mode="json", by_alias=True))


# -- signals ------------------------------------------------------------------------------


class SignalBatch(StrictCamel):
    signals: list[SignalRow] = Field(max_length=MAX_SIGNAL_ROWS)
    enqueue: bool = Field(default=True, description="Queue the affected tenants afterwards")


class SignalsOut(Camel):
    upserted: int
    tenants: int
    queued: int


# -- answer-engine observations (DESIGN §14) ----------------------------------------------


class ObservationBatch(StrictCamel):
    observations: list[ObservationRow] = Field(max_length=MAX_OBSERVATION_ROWS)
    derive_signals: bool = Field(
        default=True,
        description="Fill each observed day's aeo/geo from its visibility and citation rate "
        "(unless supplied directly) and queue the tenants",
    )


class ObservationsOut(Camel):
    upserted: int
    tenants: int
    derived: int = Field(description="Tenants whose signal rows were derived")
    queued: int


class WindowOut(BaseModel):
    from_: date = Field(alias="from", description="CURRENT_DATE - 30")
    to: date = Field(description="CURRENT_DATE (UTC)")


Ratio = Annotated[
    float | None, Field(description="0-1, rounded to 4 places; null when nothing to divide by")
]


class EngineMetricsOut(Camel):
    answers: int
    visibility: Ratio
    citation_rate: Ratio
    avg_position: float | None = Field(description="rounded to 2 places; null when none")
    share_of_voice: Ratio
    sentiment: float | None = Field(description="-1..1, rounded to 2 places; null when none")


class EngineOut(EngineMetricsOut):
    engine: str


class CompetitorOut(Camel):
    name: str
    mentions: int
    share_of_voice: Ratio


class CitedUrlOut(Camel):
    url: str
    count: int


class EnginesOut(Camel):
    tenant_id: UUID
    window: WindowOut
    overall: EngineMetricsOut
    engines: list[EngineOut] = Field(description="By engine name")
    competitors: list[CompetitorOut] = Field(
        description="At most 10: most mentions first, ties by name"
    )
    top_cited_urls: list[CitedUrlOut] = Field(
        description="At most 10: most cited first, ties by URL"
    )


# -- tenants ------------------------------------------------------------------------------


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    as_sent_at_most(200),
    AfterValidator(storable),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=255),
    as_sent_at_most(255),
    AfterValidator(storable),
]


Domain = Annotated[
    str,
    AfterValidator(host_name),
    Field(
        description="A host name (example.com, www.dealer-one.co.uk); a site's http(s) URL "
        "is reduced to its host, a page's URL is refused",
        examples=["www.dealer-one.co.uk"],
    ),
]


class TenantIn(StrictCamel):
    name: Annotated[Name, Field(description="Unique, ignoring case and surrounding blanks")]
    id: UUID | None = None
    domain: Domain | None = None
    city: ShortText | None = None
    region: ShortText | None = None
    active: bool = True
    org_id: UUID | None = Field(default=None, description="The organisation that holds it")


class TenantPatch(StrictCamel):
    """What to change: any of the three (a field left out stays as it is)."""

    org_id: UUID | None = Field(
        default=None, description="Move the tenant into this organisation (null: into none)"
    )
    name: Annotated[Name | None, Field(description="A new name, unique as at creation")] = None
    active: bool | None = Field(
        default=None,
        description="false: left out of the scheduled refresh and refused new jobs",
    )

    @model_validator(mode="after")
    def _something(self) -> "TenantPatch":
        if not self.model_fields_set:
            raise ValueError("give orgId, name or active: there is nothing to change")
        if "active" in self.model_fields_set and self.active is None:
            raise ValueError("active must be true or false")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name must not be null")
        return self


class TenantOut(Camel):
    id: UUID
    name: str
    domain: str | None
    city: str | None
    region: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    org_id: UUID | None = None


class TenantsOut(Camel):
    tenants: list[TenantOut]


# -- organisations, API keys, audit (DESIGN §12) ------------------------------------------


class OrgIn(StrictCamel):
    name: Name


class OrgOut(Camel):
    id: UUID
    name: str
    created_at: datetime
    tenants: int = Field(default=0, description="Dealerships it holds")


class OrgsOut(Camel):
    organizations: list[OrgOut]


KeyScopeName = Literal["admin", "service", "org", "tenant"]
MAX_KEY_DAYS = 3650


class KeyIn(StrictCamel):
    scope: KeyScopeName
    org_id: UUID | None = None
    tenant_id: UUID | None = None
    name: Name | None = None
    expires_in_days: int | None = Field(
        default=None, ge=1, le=MAX_KEY_DAYS, description="Days until it expires (none: never)"
    )


class KeyOut(Camel):
    id: UUID
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scope: KeyScopeName
    org_id: UUID | None
    tenant_id: UUID | None
    name: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewKeyOut(Camel):
    id: UUID
    key: str = Field(description="The key itself: shown in this answer only, never again")
    scope: KeyScopeName
    org_id: UUID | None
    tenant_id: UUID | None
    name: str | None
    expires_at: datetime | None
    created_at: datetime


class KeysOut(Camel):
    keys: list[KeyOut]


class AuditOut(Camel):
    id: int
    at: datetime
    actor: str
    role: str
    org_id: UUID | None
    tenant_id: UUID | None
    action: str
    target: str | None
    details: dict[str, Any]
    ip: str | None


class AuditPageOut(Camel):
    entries: list[AuditOut]
    next_before: int | None = Field(description="`before` for the next (older) page; null: none")


# -- operations ---------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(Camel):
    error: str | None = Field(default=None, description="Why the process is not ready")
    status: Literal["ready", "not ready"]
    database: Literal["ok", "unavailable"]
    migrations: Literal["current", "pending", "unknown"]
    pending_migrations: list[str] | None = None
