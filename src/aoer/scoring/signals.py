"""Signal ingestion: validate rows (naming row and field on error), then upsert all or none.

Rows are copied into a temporary table with COPY and merged with one
`INSERT … ON CONFLICT (dealer_id, date) DO UPDATE`, so re-sending a day replaces it.
"""

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from aoer.constants import SIGNAL_COLUMNS
from aoer.errors import InvalidInput
from aoer.store import Session
from aoer.store.signals import UnknownDealers

Percent = Annotated[
    Decimal | None, Field(default=None, ge=0, le=100, max_digits=5, decimal_places=2)
]
Rar = Annotated[Decimal | None, Field(default=None, ge=0, max_digits=7, decimal_places=2)]


class SignalRow(BaseModel):
    """One day of signals for one dealership (camelCase over HTTP, snake_case in CSV)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    dealer_id: UUID
    date: dt.date
    seo: Percent = None
    aeo: Percent = None
    geo: Percent = None
    ugc: Percent = None
    geolocal: Percent = None
    observed_aiv: Percent = None
    observed_rar: Rar = None

    @field_validator("date")
    @classmethod
    def _not_in_future(cls, value: dt.date) -> dt.date:
        if value > dt.datetime.now(dt.UTC).date():
            raise ValueError(f"date {value.isoformat()} is in the future")
        return value


@dataclass(frozen=True)
class FieldError:
    row: int
    field: str
    message: str


class SignalValidationError(InvalidInput):
    """Some signal rows are not valid."""

    def __init__(self, errors: list[FieldError], *, row_label: str = "row") -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{row_label} {first.row}, field {first.field}: {first.message}{more}")
        self.errors = errors


@dataclass(frozen=True)
class UpsertResult:
    upserted: int
    tenant_ids: list[UUID]


def validate_rows(
    rows: Iterable[Mapping[str, Any]], *, first_index: int = 0, row_label: str = "row"
) -> list[SignalRow]:
    """Validate every row; raise one error listing each bad row and field."""
    valid: list[SignalRow] = []
    errors: list[FieldError] = []
    seen: dict[tuple[UUID, dt.date], int] = {}
    for index, raw in enumerate(rows, start=first_index):
        try:
            row = SignalRow.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                errors.append(FieldError(index, field, err["msg"]))
            continue
        key = (row.dealer_id, row.date)
        if key in seen:
            errors.append(
                FieldError(
                    index, "date", f"duplicates {row_label} {seen[key]} (same dealer and date)"
                )
            )
            continue
        seen[key] = index
        valid.append(row)
    if errors:
        raise SignalValidationError(errors, row_label=row_label)
    return valid


async def upsert_signals(
    session: Session,
    rows: list[SignalRow],
    *,
    first_index: int = 0,
    row_label: str = "row",
    progress: Callable[[int], None] | None = None,
) -> UpsertResult:
    """Upsert validated rows in one transaction; unknown dealers → error, nothing written."""
    staged = (
        (index, *(getattr(row, column) for column in SIGNAL_COLUMNS))
        for index, row in enumerate(rows, start=first_index)
    )
    try:
        upserted = await session.signals.upsert(staged, progress=progress)
    except UnknownDealers as exc:
        errors = [
            FieldError(u.line, "dealerId", f"unknown tenant {u.dealer_id}") for u in exc.unknown
        ]
        raise SignalValidationError(errors, row_label=row_label) from None
    return UpsertResult(upserted=upserted, tenant_ids=sorted({row.dealer_id for row in rows}))
