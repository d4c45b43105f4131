"""The documented error responses of each route, so the OpenAPI document lists every status."""

from typing import Any

from aoer.api.schemas import ErrorOut, ValidationErrorOut

_DESCRIPTIONS = {
    400: "The request body cannot be read as JSON (for instance, it is not UTF-8)",
    401: "Missing, invalid or expired token",
    403: "The token's role or tenant does not allow this",
    404: "No such tenant, or nothing computed for it yet",
    409: "Conflicts with the current state (inactive tenant, existing id)",
    413: "The request body is over the size limit",
    415: "The request body is not JSON",
    422: "The request failed validation; `errors` names each field (and row)",
    429: "Too many open streams (for this principal, or on this server); see Retry-After",
    503: "The database is unavailable, or a row it needs is busy (see Retry-After)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "model": ValidationErrorOut if code == 422 else ErrorOut,
            "description": _DESCRIPTIONS[code],
        }
        for code in codes
    }


AUTHENTICATED = (401, 403, 503)
WITH_JSON_BODY = (400, 413, 415, 422)
