"""Observation files people bring (`aoer observations import`): CSV or JSON Lines, read lazily.

CSV: a header naming the columns (snake_case, any order); `cited_urls` and `competitors` hold
several values separated by `|`. JSON Lines: one object per line with the API's camelCase
keys and JSON arrays. The format follows the file name (`.csv`; `.jsonl`, `.ndjson`), else
the content (a first non-blank character `{` is JSON Lines).
"""

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from aoer.errors import InvalidInput
from aoer.scoring.csvfile import Problem, Record, RecordStream, stream_csv
from aoer.scoring.jsonlines import stream_jsonl
from aoer.scoring.observations import ObservationRow
from aoer.scoring.rows import FILE_LINES, FieldError, Naming, field_errors
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
    rows: Iterator[tuple[int, ObservationRow]] = field(default_factory=lambda: iter(()))


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


def _rows(
    stream: RecordStream, found: ObservationFile, *, by_alias: bool
) -> Iterator[tuple[int, ObservationRow]]:
    validate = ObservationRow.model_validate
    for item in stream.items:
        if isinstance(item, Problem):
            found.problems.extend(_field_errors([item]))
            continue
        raw = _from_cells(item) if not by_alias else item.cells
        try:
            row = validate(raw, by_alias=by_alias, by_name=not by_alias)
        except ValidationError as exc:
            found.problems.extend(field_errors(item.line, exc, found.naming))
            continue
        yield item.line, row


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
