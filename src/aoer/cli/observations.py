"""`aoer observations import`: load answer-engine observations (CSV or JSON Lines), all or
none, every bad line named at once."""

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.imports import as_problems, queued_line, report_problems, say
from aoer.cli.runner import console, errors, run_command
from aoer.config import Settings
from aoer.constants import DEFAULT_PRIORITY
from aoer.errors import TransactionAborted
from aoer.scoring.observation_files import (
    COLUMNS,
    LIST_SEPARATOR,
    REQUIRED_COLUMNS,
    Format,
    ObservationFile,
    read_observation_file,
)
from aoer.scoring.observations import (
    IngestResult,
    ObservationRow,
    ObservationValidationError,
    ingest_observations,
)
from aoer.store import Session
from aoer.wording import plural

# An import that lost a race to another (a deadlock: its transaction rolled back whole) is
# read and run again, up to this many attempts in all.
IMPORT_ATTEMPTS = 3

observations_app = typer.Typer(help="Load answer-engine observations", no_args_is_help=True)


def _columns_help() -> str:
    """The columns as `--help` lists them, from the model that validates them."""
    width = max(map(len, COLUMNS))
    lines = []
    for name in COLUMNS:
        info = ObservationRow.model_fields[name]
        need = "required" if name in REQUIRED_COLUMNS else "optional"
        lines.append(f"  {name:<{width}}  {need}  {info.description}")
    return "\n".join(lines)


def _paragraph(*parts: str) -> str:
    """One paragraph of help text: the terminal wraps it, not the source."""
    return " ".join(parts)


IMPORT_HELP = "\n\n".join(
    [
        "Load answer-engine observations into answer_observations: all rows or none.",
        f"CSV: the first line names the columns, in any order:\n{_columns_help()}",
        _paragraph(
            f"cited_urls and competitors hold several values separated by {LIST_SEPARATOR};",
            "an empty cell is no value; booleans are true/false (or 1/0, yes/no).",
        ),
        _paragraph(
            "JSON Lines (.jsonl, .ndjson): one object per line with the API's camelCase keys",
            "(dealerId, date, engine, prompt, mentioned, position, cited, citedUrls,",
            "competitors, sentiment), lists as JSON arrays. Other file names: the format is",
            "guessed from the first character ({ = JSON Lines), or given with --format.",
        ),
        _paragraph(
            "One row per dealer, day, engine and prompt; importing it again replaces it.",
            "The file is UTF-8 text (a UTF-8 byte order mark, as Excel writes, is fine;",
            "UTF-16 or Latin-1 text is refused, naming the line).",
        ),
        _paragraph(
            "Every problem is reported at once, as FILE:LINE: column COLUMN: message, with",
            "lines counting from 1 (a CSV header is line 1); then nothing is written and the",
            "exit status is 1. With --derive-signals (the default) each observed day's",
            "aeo/geo is filled from its visibility and citation rate, unless supplied",
            "directly, and the tenants are queued.",
        ),
    ]
)


@observations_app.command("import", help=IMPORT_HELP)
def observations_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSON Lines file")
    ],
    format: Annotated[
        Format | None,
        typer.Option("--format", help="csv or jsonl (default: from the name or content)"),
    ] = None,
    derive: Annotated[
        bool,
        typer.Option(
            "--derive-signals/--no-derive-signals",
            help="Derive each observed day's aeo/geo and queue the tenants",
        ),
    ] = True,
) -> None:
    async def main(settings: Settings) -> tuple[IngestResult, int]:
        found = read_observation_file(file, format)
        if found.problems:  # the encoding or the header: no line is worth reading
            report_problems(file, as_problems(found.problems))
        async with open_services(settings) as services, services.store.session() as session:
            for attempt in range(1, IMPORT_ATTEMPTS + 1):
                try:
                    result = await _ingest(session, file, found, derive)
                    break
                except TransactionAborted as exc:
                    # Rolled back whole: another import's chunks locked the same dealerships
                    # in the other order, and PostgreSQL chose this one to stop. (A timeout
                    # or an operator's cancel is not retried.)
                    if attempt == IMPORT_ATTEMPTS:
                        raise
                    say(
                        f"{file}: {exc}: another import was writing the same dealerships;"
                        f" nothing was written; importing again"
                        f" (attempt {attempt + 1} of {IMPORT_ATTEMPTS})"
                    )
                    found = read_observation_file(file, format)  # from its first line again
            jobs = (
                await queue.enqueue_many(session, result.derived, DEFAULT_PRIORITY)
                if result.derived
                else []
            )
        return result, len(jobs)

    result, queued = run_command(main)
    derived = (
        f"; signals derived for {plural(len(result.derived), 'tenant')}" if result.derived else ""
    )
    console.print(
        f"imported {plural(result.upserted, 'observation')} for"
        f" {plural(len(result.tenant_ids), 'tenant')}{derived}"
    )
    if result.derived:
        console.print(queued_line(len(result.derived), queued))


async def _ingest(
    session: Session, file: Path, found: ObservationFile, derive: bool
) -> IngestResult:
    """One attempt: every row in one transaction, with a progress bar on stderr."""
    with Progress(
        TextColumn(f"importing {file.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,  # stderr: stdout is the result line alone
        transient=True,
    ) as progress:
        task = progress.add_task("import", total=found.lines)
        try:
            return await ingest_observations(
                session,
                found.rows,
                derive=derive,
                naming=found.naming,
                earlier=found.problems,
                progress=lambda n: progress.advance(task, n),
            )
        except ObservationValidationError as exc:
            report_problems(file, as_problems(exc.errors))
