"""Request and response bodies, camelCase on the wire as the seed's clients expect (DESIGN §6)."""

import json
from datetime import datetime
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
)
from pydantic.alias_generators import to_camel

from aoer.constants import DEFAULT_PRIORITY
from aoer.scoring.signals import SignalRow
from aoer.types import Grade, JobStatus, Priority, QueueStatus, RiskLevel, Summary

MAX_SIGNAL_ROWS = 10_000  # rows per POST /api/signals
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


class SummaryOut(Camel):
    tenant_id: UUID
    aoer_score: float = Field(ge=0, le=100)
    visibility_risk: float = Field(ge=0, le=1)
    grade: Grade
    risk_level: RiskLevel
    last_updated: datetime
    metrics: dict[str, Any]


class HistoryPoint(Camel):
    created_at: datetime
    aoer_score: float
    visibility_risk: float
    grade: Grade
    risk_level: RiskLevel
    metrics: dict[str, Any]


class HistoryOut(Camel):
    tenant_id: UUID
    days: int
    history: list[HistoryPoint]


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


# -- tenants ------------------------------------------------------------------------------


def _storable(text: str) -> str:
    """PostgreSQL text holds neither NUL nor lone UTF-16 surrogates: refuse them up front."""
    if "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return text


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable),
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=255), AfterValidator(_storable)
]


class TenantIn(StrictCamel):
    name: Name
    id: UUID | None = None
    domain: ShortText | None = None
    city: ShortText | None = None
    region: ShortText | None = None
    active: bool = True


class TenantOut(Camel):
    id: UUID
    name: str
    domain: str | None
    city: str | None
    region: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class TenantsOut(Camel):
    tenants: list[TenantOut]


# -- operations ---------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(Camel):
    error: str | None = Field(default=None, description="Why the process is not ready")
    status: Literal["ready", "not ready"]
    database: Literal["ok", "unavailable"]
    migrations: Literal["current", "pending", "unknown"]
    pending_migrations: list[str] | None = None
