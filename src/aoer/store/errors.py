"""Driver errors become the project's, here and nowhere else.

A passing failure — the connection or server went away, a deadlock, a serialization failure,
a lock or statement timeout, no pooled connection in time — is a `TransientDatabaseError`:
the same work may succeed when retried. Anything else (a constraint, a bad value, a bug in
a statement) is a plain `DatabaseError` carrying PostgreSQL's own message.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from aoer.errors import (
    AoerError,
    ConcurrencyConflict,
    DatabaseError,
    DatabaseUnavailable,
    DuplicateKey,
    TransactionAborted,
)

# Lost races: worth retrying the statement or the transaction as it is. The first two abort
# the whole transaction to break the race (TransactionAborted).
_ABORTED = (pg.DeadlockDetected, pg.SerializationFailure)
_CONFLICTS = (
    *_ABORTED,
    pg.LockNotAvailable,
    pg.QueryCanceled,  # statement_timeout (and lock_timeout on some paths)
)


def message_of(exc: psycopg.Error) -> str:
    """PostgreSQL's primary message, else the driver's."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return (primary or str(exc)).strip() or type(exc).__name__


def diagnostics_of(exc: psycopg.Error) -> str | None:
    """`SQLSTATE 22003; DETAIL: …; HINT: …; CONTEXT: PL/pgSQL function f() line 3 at RAISE`: what
    PostgreSQL said beyond its primary message (the first CONTEXT line only: the innermost
    place that raised)."""
    diag = getattr(exc, "diag", None)
    if diag is None or not diag.sqlstate:
        return None
    parts = [f"SQLSTATE {diag.sqlstate}"]
    parts += [
        f"{label}: {text.strip()}"
        for label, text in (("DETAIL", diag.message_detail), ("HINT", diag.message_hint))
        if text
    ]
    if diag.context:
        parts.append(f"CONTEXT: {diag.context.strip().splitlines()[0]}")
    return "; ".join(parts)


def translate(exc: BaseException) -> AoerError:
    """The project's error for a driver error."""
    if isinstance(exc, AoerError):
        return exc
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable(f"no database connection became free in time ({exc})")
    if not isinstance(exc, psycopg.Error):
        return DatabaseError(str(exc))
    diagnostics = diagnostics_of(exc)
    if isinstance(exc, _ABORTED):
        return TransactionAborted(message_of(exc), diagnostics=diagnostics)
    if isinstance(exc, _CONFLICTS):
        return ConcurrencyConflict(message_of(exc), diagnostics=diagnostics)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return DatabaseUnavailable(f"the database is unavailable: {message_of(exc)}")
    if isinstance(exc, pg.UniqueViolation):
        return DuplicateKey(message_of(exc), diagnostics=diagnostics)
    return DatabaseError(message_of(exc), diagnostics=diagnostics)


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise driver errors (and pool timeouts) as the project's, chained to the cause."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        raise translate(exc) from exc
