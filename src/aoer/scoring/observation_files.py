"""Observation files people bring (`aoer observations import`): CSV or JSON Lines, read lazily.

CSV: a header naming the columns (snake_case, any order); `cited_urls` and `competitors` hold
several values separated by `|`. JSON Lines: one object per line with the API's camelCase
keys and JSON arrays. The format follows the file name (`.csv`; `.jsonl`, `.ndjson`), else
the content (a first non-blank character `{` is JSON Lines).
"""

import codecs
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from aoer.constants import MIN_SIGNAL_DATE
from aoer.errors import InvalidInput
from aoer.scoring.csvfile import Problem, Record, RecordStream, stream_csv
from aoer.scoring.jsonlines import stream_jsonl
from aoer.scoring.observations import (
    MAX_LIST_ITEMS,
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    MAX_URL_CHARS,
    ObservationRow,
    StagedRow,
    array_literal,
)
from aoer.scoring.rows import FILE_LINES, UNSTORABLE, FieldError, Naming, field_errors
from aoer.store.observations import OBSERVATION_COLUMNS

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")
LIST_SEPARATOR = "|"
LIST_COLUMNS = ("cited_urls", "competitors")
COLUMNS = OBSERVATION_COLUMNS
REQUIRED_COLUMNS = tuple(
    name for name, info in ObservationRow.model_fields.items() if info.is_required()
)
JSONL_KEYS = Naming("line", by_column=False)  # JSON Lines errors name the camelCase keys
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class ObservationFile:
    """A file being read: `rows` yields the valid rows with their lines and appends every
    other line's problems to `problems` as it goes (complete once `rows` is exhausted)."""

    format: Format
    naming: Naming
    lines: int  # lines in the file, for a progress bar
    problems: list[FieldError] = field(default_factory=list)
    rows: Iterator[StagedRow] = field(default_factory=lambda: iter(()))


def detect_format(path: Path, data: bytes) -> Format:
    by_name = _SUFFIXES.get(path.suffix.lower())
    if by_name is not None:
        return by_name
    start = data.removeprefix(codecs.BOM_UTF8).lstrip()
    return "jsonl" if start.startswith(b"{") else "csv"


def read_observation_file(path: Path, format: Format | None = None) -> ObservationFile:
    """Open `path` (a file that cannot be read is `InvalidInput`) and start reading it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    return parse_observations(data, format or detect_format(path, data))


def parse_observations(data: bytes, format: Format) -> ObservationFile:
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if format == "csv":
        stream = stream_csv(data, COLUMNS, REQUIRED_COLUMNS)
        found = ObservationFile("csv", FILE_LINES, lines, _field_errors(stream.problems))
        found.rows = _rows(stream, found, by_alias=False)
    else:
        stream = stream_jsonl(data)
        found = ObservationFile("jsonl", JSONL_KEYS, lines, _field_errors(stream.problems))
        found.rows = _rows(stream, found, by_alias=True)
    return found


def _rows(stream: RecordStream, found: ObservationFile, *, by_alias: bool) -> Iterator[StagedRow]:
    validate = ObservationRow.model_validate
    fast = FastCells()
    for item in stream.items:
        if isinstance(item, Problem):
            found.problems.extend(_field_errors([item]))
            continue
        if not by_alias and (staged := fast.staged(item.line, item.cells)) is not None:
            yield staged
            continue
        raw = _from_cells(item) if not by_alias else item.cells
        try:
            row = validate(raw, by_alias=by_alias, by_name=not by_alias)
        except ValidationError as exc:
            found.problems.extend(field_errors(item.line, exc, found.naming))
            continue
        yield row.staged(item.line)


# The fast path for CSV lines. Building a pydantic model per line costs ~10 us, half the time
# a million-line import may take; most lines are plainly valid. `FastCells.staged` accepts
# only lines it can prove valid with a few anchored patterns, and returns exactly the text
# `ObservationRow.staged` would (a property test holds the two together); anything else —
# an unusual spelling (`.5`, `Yes`, an upper-case UUID) or a real mistake — goes through the
# model, which decides and names the problem.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_ENGINE = re.compile(r"[a-z0-9_]{1,50}\Z")
_POSITION = re.compile(r"[1-9][0-9]{0,8}\Z")
_SENTIMENT = re.compile(r"-?(?:0(?:\.[0-9]{1,2})?|1(?:\.00?)?)\Z")
_URL = re.compile(r"https?://[A-Za-z0-9.\-_~%!$&'()*+,;=:@]+(?:[/?#][\x21-\x7e]*)?\Z")
_NAME_STOP = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BOOLS = {"true": "t", "false": "f", "TRUE": "t", "FALSE": "f", "True": "t", "False": "f",
          "1": "t", "0": "f"}  # fmt: skip


class FastCells:
    """Staged text for plainly valid CSV cells (stripped, blank as None), else None."""

    def __init__(self) -> None:
        self.today = dt.datetime.now(dt.UTC).date()  # before any row's check: never later

    def staged(self, line: int, cells: dict[str, Any]) -> StagedRow | None:
        dealer, day, engine, prompt = (cells["dealer_id"], cells["date"], cells["engine"],
                                       cells["prompt"])  # fmt: skip
        mentioned = _BOOLS.get(cells["mentioned"] or "")
        cited = _BOOLS.get(cells["cited"] or "")
        if (
            dealer is None or not _UUID.match(dealer)
            or day is None or not _DATE.match(day)
            or engine is None or not _ENGINE.match(engine)
            or prompt is None or len(prompt) > MAX_PROMPT_CHARS or UNSTORABLE.search(prompt)
            or mentioned is None or cited is None
        ):  # fmt: skip
            return None
        try:
            if not MIN_SIGNAL_DATE <= dt.date.fromisoformat(day) <= self.today:
                return None
        except ValueError:
            return None
        position = cells.get("position")
        if position is not None and (mentioned == "f" or not _POSITION.match(position)):
            return None
        sentiment = cells.get("sentiment")
        if sentiment is not None and not _SENTIMENT.match(sentiment):
            return None
        urls = _fast_list(cells.get("cited_urls"), _url_ok)
        competitors = _fast_list(cells.get("competitors"), _name_ok)
        if urls is None or competitors is None or (urls and cited == "f"):
            return None
        return (line, dealer, day, engine, prompt, mentioned, position, cited,
                array_literal(urls), array_literal(competitors), sentiment)  # fmt: skip


def _fast_list(cell: str | None, ok: Callable[[str], bool]) -> list[str] | None:
    if cell is None:
        return []
    items = [part.strip() for part in cell.split(LIST_SEPARATOR)]
    if len(items) > MAX_LIST_ITEMS or not all(ok(item) for item in items):
        return None
    return items


def _url_ok(url: str) -> bool:
    return len(url) <= MAX_URL_CHARS and _URL.match(url) is not None


def _name_ok(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME_CHARS and _NAME_STOP.search(name) is None


def _from_cells(record: Record) -> dict[str, Any]:
    """A CSV record as the model takes it: blank cells absent, lists split at `|`."""
    raw: dict[str, Any] = {}
    for name, cell in record.cells.items():
        if cell is None:
            continue
        if name in LIST_COLUMNS:
            raw[name] = [part.strip() for part in cell.split(LIST_SEPARATOR) if part.strip()]
        else:
            raw[name] = cell
    return raw


def _field_errors(problems: list[Problem]) -> list[FieldError]:
    return [FieldError(p.line, p.column or "row", p.message) for p in problems]
