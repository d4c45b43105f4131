"""What a valid alert rule and endpoint are: kinds, their parameters, URLs, secrets, e-mails.

The API and the CLI both check input here before anything is written, so a bad rule is refused
with the same words wherever it comes from.
"""

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from aoer.constants import ALERT_KINDS
from aoer.errors import InvalidInput

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # a generated secret's key length
MIN_SECRET_BYTES = 16
MAX_URL_CHARS = 2000
MAX_CHANNELS = 20
MAX_EMAIL_CHARS = 254  # endpoints and addresses per rule, each
MAX_POINTS = Decimal(100)
MAX_DAYS = 365
DEFAULT_DROP_DAYS = 7
DEFAULT_STALE_DAYS = 7
# Deliberately loose (the mail server is the judge): one @, no blanks, a dot in the domain.
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


@dataclass(frozen=True, slots=True)
class RuleInput:
    kind: str
    points: Decimal | None
    days: int | None
    emails: list[str]


def check_kind(kind: str) -> str:
    if kind not in ALERT_KINDS:
        raise InvalidInput(f"unknown alert kind {kind!r}: expected one of {', '.join(ALERT_KINDS)}")
    return kind


def rule_params(kind: str, points: object = None, days: object = None) -> dict[str, Any]:
    """The stored `params` of a rule of this kind; InvalidInput naming what is wrong."""
    check_kind(kind)
    if kind == "score_drop":
        if points is None:
            raise InvalidInput("a score_drop rule needs points (how far the score must fall)")
        return {
            "points": _points(points),
            "days": _days(days if days is not None else DEFAULT_DROP_DAYS),
        }
    if points is not None:
        raise InvalidInput(f"points apply only to score_drop rules, not to {kind}")
    if kind == "stale_data":
        return {"days": _days(days if days is not None else DEFAULT_STALE_DAYS)}
    if days is not None:
        raise InvalidInput(f"days apply only to score_drop and stale_data rules, not to {kind}")
    return {}


def _points(value: object) -> float:
    try:
        points = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"points must be a number (got {value!r})") from None
    if not points.is_finite() or points <= 0:
        raise InvalidInput(f"points must be positive (got {value})")
    if points > MAX_POINTS:
        raise InvalidInput(f"points must be at most {MAX_POINTS} (the score is 0-100)")
    if points != round(points, 2):
        raise InvalidInput(f"points have at most 2 decimals (got {value})")
    return float(points)


def _days(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"days must be a whole number of days (got {value!r})")
    try:
        days = int(value)
    except ValueError:
        raise InvalidInput(f"days must be a whole number of days (got {value!r})") from None
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS} (got {days})")
    return days


def _printable(value: str, what: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{what} holds a control character")


def check_emails(emails: list[str]) -> list[str]:
    if len(emails) > MAX_CHANNELS:
        raise InvalidInput(f"at most {MAX_CHANNELS} e-mail addresses per rule")
    cleaned = [e.strip() for e in emails]
    for address in cleaned:
        _printable(address, "an e-mail address")
        if not EMAIL.match(address) or len(address) > MAX_EMAIL_CHARS:
            raise InvalidInput(f"not an e-mail address: {address!r}")
    return list(dict.fromkeys(cleaned))


def check_endpoint_count(count: int) -> None:
    if count > MAX_CHANNELS:
        raise InvalidInput(f"at most {MAX_CHANNELS} endpoints per rule")


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host; InvalidInput otherwise."""
    url = url.strip()
    _printable(url, "endpoint url")
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"endpoint url is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a malformed port raises here
    except ValueError as exc:
        raise InvalidInput(f"endpoint url is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        raise InvalidInput(f"endpoint url must be http:// or https:// (scheme: {shown})")
    if not parts.hostname or any(c.isspace() for c in url):
        raise InvalidInput("endpoint url must name a host, without blanks")
    return url


def new_secret() -> str:
    """A fresh Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidInput("secret must start with whsec_ (Standard Webhooks)")
    body = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("secret must be whsec_ followed by base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidInput(f"secret must hold at least {MIN_SECRET_BYTES} bytes of key")
    return secret
