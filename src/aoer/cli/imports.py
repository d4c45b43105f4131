"""What every `aoer … import` shares: reporting a file's problems, every one at once."""

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NoReturn

from rich.text import Text

from aoer.cli.runner import errors
from aoer.constants import MAX_IMPORT_ERRORS_PRINTED
from aoer.errors import InvalidInput
from aoer.scoring.csvfile import Problem
from aoer.scoring.rows import FieldError
from aoer.wording import plural


def as_problems(field_errors: Iterable[FieldError]) -> list[Problem]:
    return [Problem(e.row, None if e.field == "row" else e.field, e.message) for e in field_errors]


def report_problems(file: Path, problems: Sequence[Problem], note: str | None = None) -> NoReturn:
    """Print every problem as FILE:LINE: column COLUMN: message (to a cap); raise to exit 1."""
    ordered = sorted(problems, key=lambda p: p.line)
    for problem in ordered[:MAX_IMPORT_ERRORS_PRINTED]:
        column = f"column {problem.column}: " if problem.column is not None else ""
        say(f"{file}:{problem.line}: {column}{problem.message}")
    hidden = len(ordered) - MAX_IMPORT_ERRORS_PRINTED
    if hidden > 0:
        say(f"… and {hidden} more")
    if note is not None:
        say(note)
    lines = len({p.line for p in ordered})
    raise InvalidInput(
        f"{file}: {plural(len(ordered), 'problem')} on {plural(lines, 'line')};"
        " nothing was imported"
    )


def say(line: str) -> None:
    """One line to stderr as it is: a Text is never read as markup or emoji codes (":100:"),
    and soft wrapping keeps a long line whole for grep and editors."""
    errors.print(Text(line), highlight=False, soft_wrap=True)


def queued_line(tenants: int, queued: int) -> str:
    """What an import queued: its tenants less the inactive ones (never recomputed)."""
    inactive = tenants - queued
    unqueued = f" ({inactive} inactive: not recomputed)" if inactive else ""
    return f"queued {plural(queued, 'tenant')} for recompute{unqueued}"
