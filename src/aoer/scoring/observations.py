"""Answer-engine observations (DESIGN §14): validate rows, upsert all or none, derive signals.

Rows are COPYed into a temporary table a chunk at a time (the next chunk read on a thread
meanwhile), checked there set-based (unknown dealers, a dealer/day/engine/prompt sent twice)
and merged — plain inserts for days that hold no observation yet, `INSERT … ON CONFLICT DO
UPDATE` for the rest, so re-sending an observation replaces it — all in one transaction.
With `derive`, every observed day's aeo/geo is filled from that day's visibility and citation
rate unless supplied directly; the caller then queues the tenants.
"""

import asyncio
import datetime as dt
import re
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Annotated, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from aoer.scoring.rows import (
    API_ROWS,
    DecimalWithin,
    FieldError,
    Naming,
    RowValidationError,
    as_sent_at_most,
    storable,
)
from aoer.scoring.signals import within_signal_dates
from aoer.store import Session
from aoer.store.observations import MAX_PROBLEMS_REPORTED, StageProblem

# numeric(3,2) in answer_observations: one check for its bounds and decimals, as a signal's.
_SENTIMENT = DecimalWithin("-1", "1", places=2, words="-1 to 1, at most 2 decimals")

T = TypeVar("T")

INGEST_CHUNK_ROWS = 50_000  # rows staged and merged at a time (read one chunk ahead)
MAX_PROMPT_CHARS = 500  # the unique index holds the prompt
MAX_NAME_CHARS = 200
MAX_URL_CHARS = 500  # a rollup's primary key holds the URL
MAX_LIST_ITEMS = 100  # cited URLs or competitors in one answer
MAX_POSITION = 2**31 - 1  # the column is an integer
ENGINE_PATTERN = r"^[a-z0-9_]+$"
KNOWN_ENGINES = ("chatgpt", "perplexity", "gemini", "ai_overviews", "copilot", "claude")


_WHITE_SPACE = re.compile(r"\s")


def _web_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL (e.g. https://dealer.example/page)")
    if _WHITE_SPACE.search(url):
        raise ValueError(f"{url!r} contains white space")
    return url


def _engine_name(name: str) -> str:
    if not _ENGINE_NAME.match(name):
        raise ValueError(
            f"{name!r} is not an engine name: lower-case letters, digits and _ "
            f"(e.g. {', '.join(KNOWN_ENGINES[:4])})"
        )
    return name


_ENGINE_NAME = re.compile(ENGINE_PATTERN)
Engine = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=50),
    AfterValidator(_engine_name),
    as_sent_at_most(50),
    WithJsonSchema({"type": "string", "maxLength": 50, "pattern": ENGINE_PATTERN}),
]
Prompt = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PROMPT_CHARS),
    as_sent_at_most(MAX_PROMPT_CHARS),
    AfterValidator(storable),
]
BusinessName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS),
    as_sent_at_most(MAX_NAME_CHARS),
    AfterValidator(storable),
]
WebUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_CHARS),
    as_sent_at_most(MAX_URL_CHARS),
    AfterValidator(_web_url),
    AfterValidator(storable),
]


# An observation as the stage table's COPY takes it: its line (or index), then
# `OBSERVATION_COLUMNS` as PostgreSQL text (None: NULL).
StagedRow = tuple[int, str, str, str, str, str, str | None, str, str, str, str | None]


class ObservationRow(BaseModel):
    """What one answer engine answered to one tracked prompt on one day, for one dealership
    (camelCase over HTTP and in JSON Lines, snake_case in CSV)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    dealer_id: UUID = Field(description="a registered tenant's id (UUID)")
    date: dt.date = Field(description="YYYY-MM-DD, not in the future (UTC)")
    engine: Engine = Field(
        description="lower-case letters, digits, _ (chatgpt, perplexity, gemini, "
        "ai_overviews, copilot, claude, ...)"
    )
    prompt: Prompt = Field(description=f"the tracked question, 1-{MAX_PROMPT_CHARS} characters")
    mentioned: bool = Field(description="the answer named the dealership (true/false)")
    position: int | None = Field(
        default=None,
        ge=1,
        le=MAX_POSITION,
        description="1-based rank among the businesses named; only when mentioned",
    )
    cited: bool = Field(description="the answer cited the dealership's pages (true/false)")
    cited_urls: list[WebUrl] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="the dealership's pages cited, http(s) URLs (CSV: separated by |)",
    )
    competitors: list[BusinessName] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="other businesses the answer named (CSV: separated by |)",
    )
    sentiment: Annotated[Decimal | None, _SENTIMENT.field(), AfterValidator(_SENTIMENT)] = None

    @field_validator("date")
    @classmethod
    def _within_dates(cls, value: dt.date) -> dt.date:
        return within_signal_dates(value)

    # Fields are validated in declaration order: `mentioned` and `cited` are known by then.
    @field_validator("position")
    @classmethod
    def _only_when_mentioned(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("mentioned") is False:
            raise ValueError("position is given but mentioned is false")
        return value

    @field_validator("cited_urls")
    @classmethod
    def _only_when_cited(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and info.data.get("cited") is False:
            raise ValueError("cited URLs are given but cited is false")
        return value

    def staged(self, line: int) -> StagedRow:
        """The row as the stage table's COPY takes it: `(line, *OBSERVATION_COLUMNS)` as
        PostgreSQL text (`observation_files.FastCells` yields the same from a plain CSV line)."""
        return (
            line,
            str(self.dealer_id),
            self.date.isoformat(),
            self.engine,
            self.prompt,
            pg_bool(self.mentioned),
            None if self.position is None else str(self.position),
            pg_bool(self.cited),
            array_literal(self.cited_urls),
            array_literal(self.competitors),
            None if self.sentiment is None else str(self.sentiment),
        )


def pg_bool(value: bool) -> str:
    return "t" if value else "f"


def array_literal(items: Sequence[str]) -> str:
    """A `text[]` literal: every element double-quoted, `\\` and `"` escaped."""
    if not items:
        return "{}"
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return '{"' + '","'.join(quoted) + '"}'


class ObservationValidationError(RowValidationError):
    """Some observation rows are not valid."""


@dataclass(frozen=True)
class IngestResult:
    upserted: int
    tenant_ids: list[UUID]
    derived: list[UUID] = field(default_factory=list)  # tenants whose signals were derived


async def ingest_observations(
    session: Session,
    rows: Iterable[StagedRow],
    *,
    derive: bool,
    naming: Naming = API_ROWS,
    earlier: list[FieldError] | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = INGEST_CHUNK_ROWS,
) -> IngestResult:
    """Upsert staged rows (`ObservationRow.staged`) in one transaction: all, or none and an
    error naming every bad one.

    `rows` may be a generator that validates as it goes and appends the problems of the rows it
    skips to `earlier` (a file is read once). It is read a chunk ahead on a thread, so the
    next chunk is read and checked while the database merges this one; once any problem is
    found, the rest is only staged, to name every problem, and nothing is kept."""
    earlier = earlier if earlier is not None else []
    unknown: list[StageProblem] = []
    upserted, failing = 0, False
    async with session.transaction(), aclosing(read_ahead(rows, chunk_rows)) as chunks:
        part = session.observations
        await part.open_stage()
        async for chunk in chunks:
            await part.stage(chunk, progress=progress)
            found = await part.chunk_problems()
            unknown.extend(p for p in found if p.kind == "unknown")
            failing = failing or bool(found) or bool(earlier)
            if not failing:
                upserted += await part.merge()
            await part.next_chunk()
        problems = [*unknown[:MAX_PROBLEMS_REPORTED], *await part.duplicates()]
        errors = [*earlier, *(_stage_error(p, naming) for p in problems)]
        if errors:
            errors.sort(key=lambda e: e.row)
            raise ObservationValidationError(errors, naming=naming)
        await part.refresh_rollups()
        tenants = await part.staged_tenants()
        derived = await part.derive_signals() if derive else []
    return IngestResult(upserted, tenants, derived)


async def read_ahead(rows: Iterable[T], size: int) -> AsyncGenerator[list[T]]:
    """`rows` in lists of `size`, each read on a thread while the caller works on the one
    before (reading a file is CPU work; the caller's is mostly the database's)."""
    iterator = iter(rows)

    def take() -> list[T]:
        return list(islice(iterator, size))

    pending = asyncio.ensure_future(asyncio.to_thread(take))
    try:
        while chunk := await pending:
            pending = asyncio.ensure_future(asyncio.to_thread(take))
            yield chunk
    finally:
        if not pending.done():  # the caller stopped early: let the thread finish its chunk
            await asyncio.gather(pending, return_exceptions=True)


def _stage_error(problem: StageProblem, naming: Naming) -> FieldError:
    if problem.kind == "unknown":
        return FieldError(
            problem.line, naming.field("dealerId"), f"unknown tenant {problem.dealer_id}"
        )
    message = f"duplicates {naming.row} {problem.first_line} (same dealer, date, engine and prompt)"
    return FieldError(problem.line, naming.field("prompt"), message)
