"""How every `aoer` command runs: settings, logging, one event loop; errors become messages."""

import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import TypeAdapter
from rich.console import Console, RenderableType
from rich.text import Text

from aoer.config import Settings, load_settings
from aoer.errors import AoerError
from aoer.log import setup_logging

T = TypeVar("T")
# Never markup nor emoji codes: what the commands print holds names, URLs and errors people
# typed ("Motors [UK]", ":fleet:"), which must come out as typed. Style goes in `Text`.
# Soft wrap: a message is one line whatever the width, never broken at 80 columns when piped
# ("queued as job" and its id on one line, for grep and awk); tables still fit the terminal.
console = Console(markup=False, emoji=False, soft_wrap=True)
errors = Console(stderr=True, markup=False, emoji=False, soft_wrap=True)

# Listing and status commands (DESIGN §16): `--json` prints one JSON document and nothing else.
JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else")
]
PIPED_WIDTH = 100_000  # off a terminal, tables are as wide as their content: nothing is cut

EXIT_ERROR = 1  # the command failed (bad input, unknown tenant, database down, ...)
EXIT_USAGE = 2  # the configuration or the command line is wrong


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): the API serves faster on it."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop
        return None
    return uvloop.new_event_loop


def show(renderable: RenderableType) -> None:
    """A table on the terminal; piped or redirected, at full width, so no value is cut."""
    if console.is_terminal:
        console.print(renderable)
    else:
        piped = Console(width=PIPED_WIDTH, highlight=False, markup=False, emoji=False)
        piped.print(renderable, soft_wrap=True)


def print_fields(*values: object) -> None:
    """One line of tab-separated values on stdout, as they are: never wrapped or restyled
    (`aoer tenants add` prints `id<TAB>name`, for `cut -f1`)."""
    print("\t".join(str(v) for v in values), flush=True)


_API_TIME = TypeAdapter(datetime)


def json_time(moment: datetime | None) -> str | None:
    """A time as the HTTP API writes it (`2026-12-07T16:00:00.123456Z`), so a script reads the
    CLI's `--json` and the API's answers alike."""
    return None if moment is None else str(_API_TIME.dump_python(moment, mode="json"))


def table_time(moment: datetime | None, empty: str = "-") -> str:
    """A time in a CLI table or line: to the second, in UTC, and saying so."""
    if moment is None:
        return empty
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _json_value(value: object) -> object:
    return json_time(value) if isinstance(value, datetime) else str(value)


def emit_json(document: object) -> None:
    """One JSON document on stdout (UUIDs, dates and decimals as strings; times as the API
    writes them)."""
    print(json.dumps(document, indent=2, default=_json_value), flush=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print `error: <message>` to stderr (never as markup) and exit."""
    # soft_wrap: one line per message, whatever the width (greppable, copyable)
    errors.print(Text("error: ", style="red") + Text(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:
        fail(f"invalid configuration: {exc}", EXIT_USAGE)


def run_command(make: Callable[[Settings], Coroutine[Any, Any, T]], *, service: bool = False) -> T:
    """Read settings, set up logging and run the command's coroutine; AoerError → exit 1.

    A `service` (`up`, `serve`, `worker`) logs to stdout, its output; any other command logs
    to stderr, so what it prints on stdout (`--json`, `id<TAB>name`) is all that is there
    (DESIGN §16), whatever its set-up logs (the embedded database starting, say)."""
    settings = settings_or_exit()
    setup_logging(settings.log_format, stream=sys.stdout if service else sys.stderr)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(make(settings))
    except AoerError as exc:
        fail(str(exc))


def cli_actor() -> str:
    """Who runs a command, for the audit log: `cli:` and the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
