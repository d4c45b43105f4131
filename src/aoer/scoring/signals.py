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

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from aoer.constants import MIN_SIGNAL_DATE, SIGNAL_COLUMNS
from aoer.scoring.rows import (
    API_ROWS,
    DecimalWithin,
    FieldError,
    Naming,
    RowChecker,
    RowValidationError,
)
from aoer.store import Session
from aoer.store.signals import UnknownDealers

PERCENT_HELP = "0-100, at most 2 decimals"
# numeric(5,2) and numeric(7,2) in aiv_raw_signals.
_PERCENT = DecimalWithin("0", "100", places=2, words=PERCENT_HELP)
_RAR = DecimalWithin("0", "99999.99", places=2, words="0 or more, below 100000, at most 2 decimals")
Percent = Annotated[Decimal | None, _PERCENT.field(), AfterValidator(_PERCENT)]
Rar = Annotated[Decimal | None, _RAR.field(), AfterValidator(_RAR)]


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
        return within_signal_dates(value)


def within_signal_dates(value: dt.date) -> dt.date:
    """`value` unless it is before MIN_SIGNAL_DATE or in the future (UTC)."""
    if value < MIN_SIGNAL_DATE:
        raise ValueError(
            f"date {value.isoformat()} is before {MIN_SIGNAL_DATE.isoformat()}, "
            "the earliest day signals may have"
        )
    if value > dt.datetime.now(dt.UTC).date():
        raise ValueError(f"date {value.isoformat()} is in the future")
    return value


class SignalValidationError(RowValidationError):
    """Some signal rows are not valid."""


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


def signal_checker(naming: Naming = API_ROWS) -> RowChecker[SignalRow]:
    """Signal rows validated one at a time: one row per dealer and day (the key one int:
    the dealer's 128 bits, then the day's ordinal, below 2**22 for every date; an import
    keeps one a row)."""
    return RowChecker(
        SignalRow,
        key=lambda row: row.dealer_id.int << 22 | row.date.toordinal(),
        same="same dealer and date",
        naming=naming,
    )


def check_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]], *, naming: Naming = API_ROWS
) -> tuple[list[tuple[int, SignalRow]], list[FieldError]]:
    """The valid rows with their numbers, and an error for each bad field of the others."""
    checker = signal_checker(naming)
    valid = [(n, row) for n, raw in rows if (row := checker.check(n, raw)) is not None]
    return valid, checker.errors


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
