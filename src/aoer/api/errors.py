"""HTTP errors: every failure becomes `{"error": "<message>", ...}` with a fitting status code.

Core code raises AoerError subclasses; `status_for` below is the one place that decides their
status codes. FastAPI's own `{"detail": ...}` bodies never reach a client: validation errors,
unknown routes and unexpected exceptions are all rewritten here. Driver errors never get
this far: the store translates them (`aoer.store.errors`).
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aoer.errors import (
    AoerError,
    ConcurrencyConflict,
    Conflict,
    DatabaseError,
    InvalidInput,
    NotAllowed,
    NotFound,
    TransientDatabaseError,
)
from aoer.scoring.rows import RowValidationError, error_message

logger = logging.getLogger(__name__)

MAX_LISTED_ERRORS = 1000  # a 10,000-row batch with every row wrong still gets a sane answer
RETRY_BUSY_S = "1"  # Retry-After for a request refused on a held row
RETRY_UNAVAILABLE_S = "5"  # Retry-After while the database is away


class HttpError(AoerError):
    """The request failed."""

    status_code = 500

    def __init__(
        self, message: str | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


class Unauthorized(HttpError):
    """Missing, invalid or expired credentials."""

    status_code = 401

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HttpError):
    """The token does not allow this."""

    status_code = 403


class TooManyRequests(HttpError):
    """Too many requests: retry later."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class UnsupportedMediaType(HttpError):
    """The request body must be JSON (Content-Type: application/json)."""

    status_code = 415


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


def _json(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


# The project's errors and their status codes, most specific first.
STATUS_CODES: tuple[tuple[type[AoerError], int], ...] = (
    (RowValidationError, 422),
    (InvalidInput, 400),
    (NotAllowed, 403),
    (NotFound, 404),
    (Conflict, 409),
    (TransientDatabaseError, 503),
    (DatabaseError, 500),
)


def status_for(exc: AoerError) -> int:
    """The one mapping from the project's errors to HTTP status codes."""
    if isinstance(exc, HttpError):
        return exc.status_code
    for kind, status in STATUS_CODES:
        if isinstance(exc, kind):
            return status
    return 500


# Bodies whose list of rows is reported by row index: POST /api/signals, /api/observations.
ROW_LISTS = ("signals", "observations")


def validation_issues(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI/pydantic errors as `{row?, field, message}`; rows are indexes into the body's
    list of rows (`signals`, `observations`)."""
    issues: list[dict[str, Any]] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        source, rest = (loc[0], loc[1:]) if loc else ("body", ())
        kind = err.get("type", "")
        message = error_message(err)
        if kind == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            position = f" at position {rest[0]}" if rest and isinstance(rest[0], int) else ""
            issues.append({"field": "body", "message": f"invalid JSON{position}: {detail}"})
            continue
        if kind == "missing" and not rest:
            issues.append({"field": str(source), "message": "a JSON request body is required"})
            continue
        in_rows = len(rest) >= 2 and rest[0] in ROW_LISTS and isinstance(rest[1], int)
        if source == "body" and in_rows:
            field = ".".join(str(p) for p in rest[2:]) or "row"
            issues.append({"row": rest[1], "field": field, "message": message})
        else:
            field = ".".join(str(p) for p in rest) or str(source)
            issues.append({"field": field, "message": message})
    return issues


def summarize(issues: Sequence[Mapping[str, Any]]) -> str:
    first = issues[0]
    where = f"row {first['row']} (counting from 0), " if "row" in first else ""
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{where}{first['field']}: {first['message']}{more}"


def _listed(issues: list[dict[str, Any]]) -> dict[str, Any]:
    extra: dict[str, Any] = {"errors": issues[:MAX_LISTED_ERRORS]}
    if len(issues) > MAX_LISTED_ERRORS:
        extra["errorCount"] = len(issues)
    return extra


async def _on_aoer_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AoerError)
    status = status_for(exc)
    if isinstance(exc, RowValidationError):
        issues = [{"row": e.row, "field": e.field, "message": e.message} for e in exc.errors]
        return _json(status, error_body(str(exc), **_listed(issues)))
    if isinstance(exc, ConcurrencyConflict):
        # A row this request needs is held by another transaction (a worker mid-claim, a
        # hung process the server has not ended yet): refused fast instead of waiting.
        logger.warning("busy: %s", exc)
        message = "the data is busy (another transaction holds it), try again shortly"
        return _json(status, error_body(message), {"Retry-After": RETRY_BUSY_S})
    if isinstance(exc, TransientDatabaseError):
        logger.warning("database unavailable: %s", exc)
        message = "the database is unavailable, try again shortly"
        return _json(status, error_body(message), {"Retry-After": RETRY_UNAVAILABLE_S})
    if status >= 500:
        logger.error("request failed: %s", exc)
    headers = exc.headers if isinstance(exc, HttpError) else None
    return _json(status, error_body(str(exc)), headers)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = validation_issues(exc.errors()) or [{"field": "request", "message": "invalid"}]
    return _json(422, error_body(summarize(issues), **_listed(issues)))


async def _on_http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if message == "There was an error parsing the body":  # FastAPI's words for it
        message = "the request body cannot be read as JSON: send UTF-8 encoded JSON"
    return _json(exc.status_code, error_body(message), exc.headers)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=exc)
    return _json(500, error_body("internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AoerError, _on_aoer_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
