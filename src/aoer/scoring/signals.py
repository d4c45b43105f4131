"""Signal ingestion: validate rows (naming row and field on error), then upsert all or none.

Rows are copied into a temporary table with COPY and merged with one
`INSERT … ON CONFLICT (dealer_id, date) DO UPDATE`, so re-sending a day replaces it.
"""

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from aoer.constants import MIN_SIGNAL_DATE, SIGNAL_COLUMNS
from aoer.errors import InvalidInput
from aoer.store import Session
from aoer.store.signals import UnknownDealers

PERCENT_HELP = "0-100, at most 2 decimals"
Percent = Annotated[
    Decimal | None,
    Field(default=None, ge=0, le=100, max_digits=5, decimal_places=2, description=PERCENT_HELP),
]
Rar = Annotated[
    Decimal | None,
    Field(
        default=None,
        ge=0,
        max_digits=7,
        decimal_places=2,
        description="0 or more, below 100000, at most 2 decimals",
    ),
]


class SignalRow(BaseModel):
    """One day of signals for one dealership (camelCase over HTTP, snake_case in CSV)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    dealer_id: UUID = Field(description="a registered tenant's id (UUID)")
    date: dt.date = Field(
        description=f"YYYY-MM-DD, from {MIN_SIGNAL_DATE.isoformat()} up to today (UTC)"
    )
    seo: Percent = None
    aeo: Percent = None
    geo: Percent = None
    ugc: Percent = None
    geolocal: Percent = None
    observed_aiv: Percent = None
    observed_rar: Rar = None

    @field_validator("date")
    @classmethod
    def _within_signal_dates(cls, value: dt.date) -> dt.date:
        if value < MIN_SIGNAL_DATE:
            raise ValueError(
                f"date {value.isoformat()} is before {MIN_SIGNAL_DATE.isoformat()}, "
                "the earliest day signals may have"
            )
        if value > dt.datetime.now(dt.UTC).date():
            raise ValueError(f"date {value.isoformat()} is in the future")
        return value


# A CSV names a field by its column (snake_case); pydantic may name it by its alias.
_COLUMN_OF_ALIAS = {info.alias or name: name for name, info in SignalRow.model_fields.items()}


@dataclass(frozen=True)
class Naming:
    """How errors name where they are: the API's row index and camelCase field, or a file's
    line and column."""

    row: str
    by_column: bool

    def field(self, name: str) -> str:
        return _COLUMN_OF_ALIAS.get(name, name) if self.by_column else name

    def where(self, row: int) -> str:
        return f"{self.row} {row}" + (" (counting from 0)" if self.row == "row" else "")


API_ROWS = Naming("row", by_column=False)  # `row` is the index in `signals`, from 0
FILE_LINES = Naming("line", by_column=True)  # lines of the file, from 1 (the header)


@dataclass(frozen=True)
class FieldError:
    row: int
    field: str
    message: str


class SignalValidationError(InvalidInput):
    """Some signal rows are not valid."""

    def __init__(self, errors: list[FieldError], *, naming: Naming = API_ROWS) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        where = naming.where(first.row)
        label = "column" if naming.by_column else "field"
        super().__init__(f"{where}, {label} {first.field}: {first.message}{more}")
        self.errors = errors


@dataclass(frozen=True)
class UpsertResult:
    upserted: int
    tenant_ids: list[UUID]


def validate_rows(rows: Iterable[Mapping[str, Any]]) -> list[SignalRow]:
    """Validate every row (numbered from 0); raise one error listing each bad row and field."""
    valid, errors = check_rows(enumerate(rows))
    if errors:
        raise SignalValidationError(errors)
    return [row for _, row in valid]


def check_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]], *, naming: Naming = API_ROWS
) -> tuple[list[tuple[int, SignalRow]], list[FieldError]]:
    """The valid rows with their numbers, and an error for each bad field of the others."""
    valid: list[tuple[int, SignalRow]] = []
    errors: list[FieldError] = []
    seen: dict[tuple[UUID, dt.date], int] = {}
    for number, raw in rows:
        try:
            row = SignalRow.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(naming.field(str(p)) for p in err["loc"]) or "row"
                errors.append(FieldError(number, field, err["msg"]))
            continue
        key = (row.dealer_id, row.date)
        if key in seen:
            message = f"duplicates {naming.row} {seen[key]} (same dealer and date)"
            errors.append(FieldError(number, "date", message))
            continue
        seen[key] = number
        valid.append((number, row))
    return valid, errors


async def unknown_dealers(
    session: Session, rows: Sequence[tuple[int, SignalRow]], *, naming: Naming = API_ROWS
) -> list[FieldError]:
    """An error for every row whose dealer is not a registered tenant."""
    unknown = await session.tenants.unknown(sorted({row.dealer_id for _, row in rows}))
    return [
        FieldError(number, naming.field("dealerId"), _unknown_tenant(row.dealer_id))
        for number, row in rows
        if row.dealer_id in unknown
    ]


def _unknown_tenant(dealer_id: UUID) -> str:
    return f"unknown tenant {dealer_id}"


async def upsert_signals(
    session: Session,
    rows: Sequence[SignalRow],
    *,
    numbers: Sequence[int] | None = None,
    naming: Naming = API_ROWS,
    progress: Callable[[int], None] | None = None,
) -> UpsertResult:
    """Upsert validated rows in one transaction; unknown dealers → error, nothing written.

    Errors name a row by its number in `numbers` (by default its index in `rows`)."""
    staged = (
        (number, *(getattr(row, column) for column in SIGNAL_COLUMNS))
        for number, row in zip(numbers or range(len(rows)), rows, strict=True)
    )
    try:
        upserted = await session.signals.upsert(staged, progress=progress)
    except UnknownDealers as exc:
        errors = [
            FieldError(u.line, naming.field("dealerId"), _unknown_tenant(u.dealer_id))
            for u in exc.unknown
        ]
        raise SignalValidationError(errors, naming=naming) from None
    return UpsertResult(upserted=upserted, tenant_ids=sorted({row.dealer_id for row in rows}))
