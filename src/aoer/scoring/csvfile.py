"""Reading a CSV file a person saved: its records by line, and every problem with line and column.

Nothing here stops at the first problem: the header, the encoding and the shape of every line
are checked in one pass, so a file is fixed in one go. Lines count from 1, the header is line 1;
a record is named by the line it starts on. Blank cells are `None`; blank lines are skipped.
"""

import codecs
import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aoer.errors import InvalidInput

# UTF-32 LE before UTF-16 LE: its mark starts with the other's.
_FOREIGN_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
SAVE_AS_UTF8 = "save the file as UTF-8 (in Excel: CSV UTF-8)"
# Undecodable bytes become lone surrogates U+DC80–U+DCFF ("surrogateescape"): text never
# holds them otherwise, so a cell containing one is exactly a cell with bytes that are not UTF-8.
_ESCAPED_TEXT = re.compile("[\udc80-\udcff]")
_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


class _Reader(Protocol):
    """What is used of a `csv.reader`: rows, and the physical line it has read up to."""

    line_num: int

    def __next__(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: str | None  # as written in the file's header; None: the line as a whole
    message: str


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    cells: dict[str, Any]  # CSV: str or None (blank); JSON Lines: JSON values


@dataclass(slots=True)
class CsvFile:
    columns: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_csv(path: Path, columns: Sequence[str], required: Sequence[str]) -> CsvFile:
    """Read and check `path` (see `parse_csv`); a file that cannot be read is `InvalidInput`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    return parse_csv(data, columns, required)


def parse_csv(data: bytes, columns: Sequence[str], required: Sequence[str]) -> CsvFile:
    """Records whose header names only `columns`, with every column of `required`."""
    stream = stream_csv(data, columns, required)
    found = CsvFile(columns=stream.columns, problems=list(stream.problems))
    for item in stream.items:
        if isinstance(item, Record):
            found.records.append(item)
        else:
            found.problems.append(item)
    return found


@dataclass(slots=True)
class RecordStream:
    """A file of records read lazily (CSV here, JSON Lines in `jsonlines`): the header's
    columns and the problems found up front (encoding, header), then the records and the
    problems of the lines, in file order, as they are read."""

    columns: list[str]
    problems: list[Problem]
    items: Iterator[Record | Problem]


def stream_csv(data: bytes, columns: Sequence[str], required: Sequence[str]) -> RecordStream:
    """`parse_csv`, one record at a time (a million-line file is never held as records).

    When the encoding or the header has a problem, `items` is empty."""
    problem = not_utf8(data)
    if problem is not None:
        return RecordStream([], [problem], iter(()))
    text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    reader = csv.reader(physical_lines(text))
    found = CsvFile()
    header = _next_row(reader, found)
    if not header or not any(cell.strip() for cell in header):
        expected = ",".join(columns)
        found.problems.append(
            Problem(1, None, f"the first line must name the columns, e.g. {expected}")
        )
        return RecordStream([], found.problems, iter(()))
    names = [_column_named(cell.strip(), columns) for cell in header]
    found.problems.extend(_header_problems(names, columns, required))
    if found.problems:
        return RecordStream(names, found.problems, iter(()))
    escapes = _ESCAPED_TEXT.search(text) is not None
    return RecordStream(names, [], _read_records(reader, names, escapes=escapes))


def physical_lines(text: str) -> Iterator[str]:
    """`text`'s lines with their ends, as a file opened with `newline=""` gives them (what the
    csv module reads), one at a time: an `io.StringIO` would hold the text again at 4 bytes a
    character."""
    return (found.group() for found in _PHYSICAL_LINE.finditer(text))


def not_utf8(data: bytes) -> Problem | None:
    """UTF-16/32 files (a byte order mark, or NUL bytes): read as UTF-8 they would be garbage.
    Shared by every reader of text files people save (CSV, JSON Lines)."""
    for mark, name in _FOREIGN_MARKS:
        if data.startswith(mark):
            return Problem(1, None, f"the file is {name} text, not UTF-8; {SAVE_AS_UTF8}")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        return Problem(
            line, None, f"a NUL byte: the file is not UTF-8 text (UTF-16?); {SAVE_AS_UTF8}"
        )
    return None


def _column_named(name: str, columns: Sequence[str]) -> str:
    """The column `name` means, whatever its case, spaces, dashes or underscores (`Dealer
    ID`, `dealerId` and `DEALER-ID` are `dealer_id`: what a spreadsheet's header reads);
    `name` itself when it means none."""
    key = _column_key(name)
    return next((column for column in columns if _column_key(column) == key), name)


def _column_key(name: str) -> str:
    return "".join(c for c in name.casefold() if c.isalnum())


def _header_problems(
    names: Sequence[str], columns: Sequence[str], required: Sequence[str]
) -> list[Problem]:
    problems: list[Problem] = []
    known = ", ".join(columns)
    if len(names) == 1 and ";" in names[0]:
        parts = [_column_named(part.strip(), columns) for part in names[0].split(";")]
        if any(part in columns for part in parts):
            return [
                Problem(
                    1,
                    None,
                    "the columns are separated by semicolons: save the file as CSV with"
                    f" commas between the cells (the columns are {known})",
                )
            ]
    for position, name in enumerate(names, start=1):
        if not name:
            trailing = position == len(names)
            why = " (a comma at the end of the line?)" if trailing else ""
            problems.append(Problem(1, None, f"column {position} has no name{why}"))
        elif bad_bytes(name):
            problems.append(Problem(1, None, f"{bad_bytes(name)}; {SAVE_AS_UTF8}"))
        elif name not in columns:
            problems.append(Problem(1, name, f"unknown column (the columns are {known})"))
        elif name in names[: position - 1]:
            problems.append(Problem(1, name, "named twice"))
    problems.extend(
        Problem(1, name, "missing (a required column)") for name in required if name not in names
    )
    return problems


def _read_records(
    reader: _Reader, names: list[str], *, escapes: bool
) -> Iterator[Record | Problem]:
    """`escapes`: whether the text holds any undecodable byte at all (else no cell is
    searched for one: a million-line file is read at C speed)."""
    previous = reader.line_num
    unreadable = CsvFile()
    while (cells := _next_row(reader, unreadable)) is not None:
        yield from unreadable.problems
        unreadable.problems.clear()
        line, previous = previous + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            yield _wrong_width(line, cells, names)
            continue
        if escapes or reader.line_num > line:  # bad bytes, or a cell spanning lines
            problems = [
                problem
                for name, cell in zip(names, cells, strict=True)
                if (problem := _cell_problem(line, reader.line_num, name, cell)) is not None
            ]
            if problems:
                yield from problems
                continue
        yield Record(line, {n: c.strip() or None for n, c in zip(names, cells, strict=True)})
    yield from unreadable.problems


def _next_row(reader: _Reader, found: CsvFile) -> list[str] | None:
    """The next row, or None at the end; a line the csv module refuses is a problem, skipped."""
    while True:
        try:
            return next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            found.problems.append(Problem(reader.line_num, None, f"not readable as CSV: {exc}"))


def _wrong_width(line: int, cells: Sequence[str], names: Sequence[str]) -> Problem:
    if len(cells) < len(names):
        missing = names[len(cells)]
        return Problem(
            line,
            missing,
            f"no cell: the line has {len(cells)} cells, the header names {len(names)} columns "
            "(leave a cell empty, but keep its comma)",
        )
    return Problem(
        line, None, f"{len(cells)} cells, but the header names only {len(names)} columns"
    )


def _cell_problem(line: int, last_line: int, name: str, cell: str) -> Problem | None:
    bad = bad_bytes(cell)
    if bad:
        return Problem(line, name, f"{bad}; {SAVE_AS_UTF8}")
    if "\n" in cell or "\r" in cell:
        return Problem(
            line, name, f"a quoted cell runs to line {last_line}: is a closing quote missing?"
        )
    return None


def bad_bytes(text: str) -> str:
    """'byte 0xe9 is not UTF-8 (…)' when `text` came from undecodable bytes, else ''."""
    found = _ESCAPED_TEXT.search(text)
    if found is None:
        return ""
    return (
        f"byte 0x{ord(found.group()) - 0xDC00:02x} is not UTF-8 "
        "(the file looks like Latin-1 or Windows-1252 text)"
    )
