"""`aoer signals import`: load a CSV of signal rows, all or none, every bad row named at once."""

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.progress import Progress

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.imports import as_problems, queued_line, report_problems
from aoer.cli.runner import console, errors, run_command
from aoer.config import Settings
from aoer.constants import DEFAULT_PRIORITY, SIGNAL_COLUMNS
from aoer.errors import AoerError, InvalidInput
from aoer.scoring.csvfile import Problem, stream_csv
from aoer.scoring.rows import FILE_LINES
from aoer.scoring.signals import SignalRow, signal_checker
from aoer.store import Session
from aoer.store.signals import UnknownDealers
from aoer.wording import plural

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
    async def main(settings: Settings) -> tuple[int, int, int | None]:
        found = _SignalFile(file)
        try:
            async with open_services(settings) as services, services.store.session() as session:
                return await found.load(session, enqueue_after=enqueue_after)
        except InvalidInput:
            raise  # the file's problems, reported
        except AoerError as exc:
            if not found.read_through():
                raise
            # The file's own problems still get reported; only the dealer check is missing.
            report_problems(file, found.problems, f"dealer ids were not checked: {exc}")

    upserted, tenants, queued = run_command(main)
    console.print(f"imported {plural(upserted, 'row')} for {plural(tenants, 'tenant')}")
    if queued is not None:
        console.print(queued_line(tenants, queued))


class _Refused(Exception):
    """The file had problems: roll the import back (they are reported after)."""


class _SignalFile:
    """A CSV of signal rows read once, line by line, straight into the database's COPY: the
    file is never held as records or models (a 900,000-line backfill took ~2.6 GB that
    way), and any problem rolls the whole import back once every one has been found."""

    def __init__(self, file: Path) -> None:
        self.file = file
        try:
            self.data = file.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{file}: cannot read the file: {exc.strerror or exc}") from None
        self.stream = stream_csv(self.data, SIGNAL_COLUMNS, REQUIRED_COLUMNS)
        self.checker = signal_checker(FILE_LINES)
        self.problems: list[Problem] = list(self.stream.problems)
        self.tenant_ids: set[UUID] = set()

    def rows(self) -> Iterator[tuple[object, ...]]:
        """The valid rows as `(line, *SIGNAL_COLUMNS)`; problems are kept on the way."""
        for item in self.stream.items:
            if isinstance(item, Problem):
                self.problems.append(item)
                continue
            row = self.checker.check(item.line, item.cells)
            if row is not None:
                self.tenant_ids.add(row.dealer_id)
                yield (item.line, *(getattr(row, column) for column in SIGNAL_COLUMNS))

    def read_through(self) -> bool:
        """Read the rest without a database (it could not be reached); whether there were
        problems to report."""
        for _ in self.rows():
            pass
        self.problems += as_problems(self.checker.errors)
        return bool(self.problems)

    async def load(self, session: Session, *, enqueue_after: bool) -> tuple[int, int, int | None]:
        """Rows written, tenants they belong to, and tenants queued (None: not asked)."""
        if self.problems:  # the encoding or the header: no line was read
            report_problems(self.file, self.problems)
        lines, upserted, queued = self.data.count(b"\n"), 0, None
        try:
            async with session.transaction():
                with Progress(console=errors, transient=True) as progress:  # stderr
                    task = progress.add_task(f"importing {self.file.name}", total=lines)
                    upserted = await session.signals.upsert(
                        self.rows(), progress=lambda n: progress.advance(task, n)
                    )
                self.problems += as_problems(self.checker.errors)
                if self.problems:
                    raise _Refused("rolled back")
                if enqueue_after:
                    jobs = await queue.enqueue_many(
                        session, sorted(self.tenant_ids), DEFAULT_PRIORITY
                    )
                    queued = len(jobs)
        except _Refused:
            pass  # rolled back; reported below
        except UnknownDealers as exc:
            for _ in self.rows():  # the COPY stopped early on no line: read what is left
                pass
            self.problems += as_problems(self.checker.errors)
            self.problems += [
                Problem(u.line, "dealer_id", f"unknown tenant {u.dealer_id}") for u in exc.unknown
            ]
        if self.problems:
            report_problems(self.file, self.problems)
        return upserted, len(self.tenant_ids), queued
