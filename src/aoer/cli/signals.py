"""`aoer signals import`: load a CSV of signal rows, all or none, every bad row named at once."""

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.progress import Progress
from rich.text import Text

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.runner import console, errors, run_command
from aoer.config import Settings
from aoer.constants import DEFAULT_PRIORITY, MAX_IMPORT_ERRORS_PRINTED, SIGNAL_COLUMNS
from aoer.errors import AoerError, InvalidInput
from aoer.scoring.csvfile import Problem, read_csv
from aoer.scoring.rows import FILE_LINES, FieldError
from aoer.scoring.signals import (
    SignalRow,
    SignalValidationError,
    check_rows,
    unknown_dealers,
    upsert_signals,
)
from aoer.store import Session

signals_app = typer.Typer(help="Load signal rows", no_args_is_help=True)

REQUIRED_COLUMNS = tuple(
    name for name, info in SignalRow.model_fields.items() if info.is_required()
)


def _columns_help() -> str:
    """The columns as `--help` lists them, from the model that validates them."""
    width = max(map(len, SIGNAL_COLUMNS))
    lines = []
    for name in SIGNAL_COLUMNS:
        info = SignalRow.model_fields[name]
        need = "required" if name in REQUIRED_COLUMNS else "optional"
        lines.append(f"  {name:<{width}}  {need}  {info.description}")
    return "\n".join(lines)


IMPORT_HELP = f"""Load a CSV file of signal rows into aiv_raw_signals: all rows or none.

The first line names the columns, in any order:
{_columns_help()}

One row per dealer and day; importing a day again replaces it. An empty cell is no value.
The file is UTF-8 text (a byte order mark, as Excel writes, is fine).

Every problem is reported at once, as FILE:LINE: column COLUMN: message, with lines
counting from 1 (the header is line 1); then nothing is written and the exit status is 1.
"""


@signals_app.command("import", help=IMPORT_HELP)
def signals_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file")],
    enqueue_after: Annotated[
        bool, typer.Option("--enqueue/--no-enqueue", help="Queue the affected tenants")
    ] = True,
) -> None:
    async def main(settings: Settings) -> tuple[int, int]:
        found = read_csv(file, SIGNAL_COLUMNS, REQUIRED_COLUMNS)
        records = ((record.line, record.cells) for record in found.records)
        valid, invalid = check_rows(records, naming=FILE_LINES)
        problems = [*found.problems, *_problems(invalid)]
        try:
            async with open_services(settings) as services, services.store.session() as session:
                if valid:
                    unknown = await unknown_dealers(session, valid, naming=FILE_LINES)
                    problems += _problems(unknown)
                if not problems:
                    return await _load(session, file, valid, enqueue_after=enqueue_after)
        except AoerError as exc:
            if not problems:
                raise
            # The file's own problems still get reported; only the dealer check is missing.
            _report(file, problems, f"dealer ids were not checked: {exc}")
        _report(file, problems)

    upserted, tenants = run_command(main)
    console.print(f"imported {upserted} rows for {tenants} tenants")


async def _load(
    session: Session, file: Path, valid: Sequence[tuple[int, SignalRow]], *, enqueue_after: bool
) -> tuple[int, int]:
    lines, rows = zip(*valid, strict=True) if valid else ((), ())
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"importing {file.name}", total=len(rows))
        try:
            result = await upsert_signals(
                session,
                rows,
                numbers=lines,
                naming=FILE_LINES,
                progress=lambda n: progress.advance(task, n),
            )
        except SignalValidationError as exc:  # a tenant deleted since the check
            _report(file, _problems(exc.errors))
    if enqueue_after:
        await queue.enqueue_many(session, result.tenant_ids, DEFAULT_PRIORITY)
    return result.upserted, len(result.tenant_ids)


def _problems(field_errors: Iterable[FieldError]) -> list[Problem]:
    return [Problem(e.row, None if e.field == "row" else e.field, e.message) for e in field_errors]


def _report(file: Path, problems: Sequence[Problem], note: str | None = None) -> NoReturn:
    """Print every problem as FILE:LINE: column COLUMN: message (to a cap); raise to exit 1."""
    ordered = sorted(problems, key=lambda p: p.line)
    for problem in ordered[:MAX_IMPORT_ERRORS_PRINTED]:
        column = f"column {problem.column}: " if problem.column is not None else ""
        _say(f"{file}:{problem.line}: {column}{problem.message}")
    hidden = len(ordered) - MAX_IMPORT_ERRORS_PRINTED
    if hidden > 0:
        _say(f"… and {hidden} more")
    if note is not None:
        _say(note)
    lines = len({p.line for p in ordered})
    raise InvalidInput(
        f"{file}: {_count(len(ordered), 'problem')} on {_count(lines, 'line')}; "
        "nothing was imported"
    )


def _say(line: str) -> None:
    """One line to stderr as it is: a Text is never read as markup or emoji codes (":100:"),
    and soft wrapping keeps a long line whole for grep and editors."""
    errors.print(Text(line), highlight=False, soft_wrap=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
