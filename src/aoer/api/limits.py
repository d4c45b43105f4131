"""Request-body rules: a size limit answered in the API's error shape, and JSON bodies only.

FastAPI's own `max_body_size` answers a declared oversize body with a plain-text 413 that no
handler can reshape, so the limit is enforced here instead.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aoer.api.errors import UnsupportedMediaType, error_body
from aoer.api.schemas import MAX_OBSERVATION_ROWS, MAX_SIGNAL_ROWS, dump_json


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a request body may hold, and the rows a client should send fewer of."""

    max_bytes: int
    rows: str

    def message(self) -> str:
        return (
            f"request body too large: the limit is {self.max_bytes} bytes "
            f"(send at most {self.rows} per request)"
        )


MiB = 1024 * 1024
# 10,000 signal rows fit in about 2.5 MB.
MAX_BODY = BodyLimit(4 * MiB, f"{MAX_SIGNAL_ROWS:,} signal rows")
# An observation carries its prompt, cited pages and competitors: ~500 bytes for a common one
# (a 90-character prompt, two URLs, four competitors), so 10,000 of them need room to spare.
ROUTE_BODY_LIMITS: Mapping[str, BodyLimit] = {
    "/api/observations": BodyLimit(24 * MiB, f"{MAX_OBSERVATION_ROWS:,} observations"),
}
MAX_BODY_BYTES = MAX_BODY.max_bytes


def body_limit(path: str) -> BodyLimit:
    return ROUTE_BODY_LIMITS.get(path.rstrip("/") or "/", MAX_BODY)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: BodyLimit) -> None:
        super().__init__(status_code=413, detail=limit.message())


class BodySizeLimit:
    """413 for a body over its route's limit (`body_limit`): at once when Content-Length says
    so, else as soon as the bytes read pass it (chunked uploads), before any of it is parsed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit.max_bytes:
            body = dump_json(error_body(limit.message()))
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise BodyTooLarge(limit)  # an HTTPException: the error handlers shape it
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def require_json(
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """415 unless the body is declared as JSON (this also stops cross-site form posts)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type or '(none)'!r}: send application/json"
        )
