"""Request-body rules: a size limit answered in the API's error shape, and JSON bodies only.

FastAPI's own `max_body_size` answers a declared oversize body with a plain-text 413 that no
handler can reshape, so the limit is enforced here instead.
"""

from typing import Annotated

from fastapi import Header
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aoer.api.errors import UnsupportedMediaType, error_body, too_large_message
from aoer.api.schemas import dump_json

MAX_BODY_BYTES = 4 * 1024 * 1024  # 10,000 signal rows fit in about 2.5 MB


class BodyTooLarge(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body too large")


class BodySizeLimit:
    """413 for a body over `max_bytes`: at once when Content-Length says so, else as soon as
    the bytes read pass the limit (chunked uploads), before any of it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            body = dump_json(error_body(too_large_message(self.max_bytes)))
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
                if received > self.max_bytes:
                    raise BodyTooLarge()  # an HTTPException: the error handlers shape it
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
