"""The JWT and cron secrets of a machine with none configured: generated once into AOER_HOME.

Files are created with mode 0600 and reused on every later start, so tokens minted by
`aoer token` keep working across restarts. Replicas on several hosts must share one
AOER_JWT_SECRET instead.
"""

import logging
import os
import secrets
from pathlib import Path

from aoer.config import Settings
from aoer.errors import AoerError

logger = logging.getLogger(__name__)

JWT_SECRET_FILE = "jwt_secret"
CRON_SECRET_FILE = "cron_secret"
SECRET_BYTES = 48


def with_secrets(settings: Settings, *, create: bool) -> Settings:
    """Settings whose missing secrets are read from (or, with `create`, written to) AOER_HOME."""
    jwt_secret = settings.jwt_secret or _file_secret(settings.home / JWT_SECRET_FILE, create)
    cron_secret = settings.cron_secret or _file_secret(settings.home / CRON_SECRET_FILE, create)
    return settings.model_copy(update={"jwt_secret": jwt_secret, "cron_secret": cron_secret})


def _file_secret(path: Path, create: bool) -> str | None:
    if path.exists():
        return _read(path)
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: the secret appears complete
    # or not at all, and of two processes starting at once exactly one wins.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(SECRET_BYTES) + "\n")
    try:
        os.link(draft, path)
        logger.warning("generated a new secret in %s (mode 0600)", path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return _read(path)


def _read(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        logger.warning("%s is readable by other users: chmod 600 it", path)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise AoerError(f"{path} is empty: delete it to have a new secret generated")
    return value
