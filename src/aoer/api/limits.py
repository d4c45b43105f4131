"""Request-body rules: a size limit (enforced by FastAPI's `max_body_size`) and JSON only."""

from typing import Annotated

from fastapi import Header

from aoer.api.errors import UnsupportedMediaType

MAX_BODY_BYTES = 4 * 1024 * 1024  # 10,000 signal rows fit in about 2.5 MB


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
