"""`aoer signals import`: load a CSV of signal rows, all or none, every bad row named at once."""

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.imports import as_problems, report_problems
from aoer.cli.runner import console, run_command
from aoer.config import Settings
from aoer.constants import DEFAULT_PRIORITY, SIGNAL_COLUMNS
from aoer.errors import AoerError
from aoer.scoring.csvfile import read_csv
from aoer.scoring.rows import FILE_LINES
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
        problems = [*found.problems, *as_problems(invalid)]
        try:
            async with open_services(settings) as services, services.store.session() as session:
                if valid:
                    unknown = await unknown_dealers(session, valid, naming=FILE_LINES)
                    problems += as_problems(unknown)
                if not problems:
                    return await _load(session, file, valid, enqueue_after=enqueue_after)
        except AoerError as exc:
            if not problems:
                raise
            # The file's own problems still get reported; only the dealer check is missing.
            report_problems(file, problems, f"dealer ids were not checked: {exc}")
        report_problems(file, problems)

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
            report_problems(file, as_problems(exc.errors))
    if enqueue_after:
        await queue.enqueue_many(session, result.tenant_ids, DEFAULT_PRIORITY)
    return result.upserted, len(result.tenant_ids)
