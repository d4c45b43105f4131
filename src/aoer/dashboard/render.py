"""Templates and static assets of the dashboard, loaded from the package (no CDN, no build)."""

import hashlib
import inspect
import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Any, Final

from fastapi import FastAPI, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response

from aoer.alerts.wording import delivery_line

# Every page may load only what this app serves; scripts and styles come from files only.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",  # pages carry one tenant's data: never cached anywhere
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
STATIC_PREFIX: Final = "/dashboard/static/"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # a content hash: URLs carry it, so a changed file is a new URL


@cache
def assets() -> dict[str, Asset]:
    """Every file under `dashboard/static`, read once."""
    found: dict[str, Asset] = {}
    for entry in resources.files("aoer.dashboard").joinpath("static").iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            body = entry.read_bytes()
            media_type = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith("javascript"):
                media_type += "; charset=utf-8"
            found[entry.name] = Asset(body, media_type, hashlib.sha256(body).hexdigest()[:12])
    return found


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}{name}?v={assets()[name].version}"


def fixed(value: object, digits: int = 2) -> str:
    """A number with a fixed number of decimals; a dash when there is none."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return "—"
    return f"{_half_away_from_zero(number, digits):.{digits}f}"


def _half_away_from_zero(number: Decimal, digits: int) -> Decimal:
    """As the API rounds (DESIGN §3, §14): Decimal's own formatting rounds half to even."""
    return number.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def signed(value: object, digits: int = 2) -> str:
    """A change with its sign ("+1.20", or a minus sign U+2212 before "3.40"); a dash when
    there is none."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        number = _half_away_from_zero(Decimal(str(value)), digits)
    except ArithmeticError:
        return "—"
    text = f"{abs(number):.{digits}f}"
    return f"+{text}" if number > 0 else f"−{text}" if number < 0 else text


def percent(value: object, digits: int = 1) -> str:
    """A 0-1 ratio as a percentage ("31.4 %"); a dash when there is none."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        number = Decimal(str(value)) * 100
    except ArithmeticError:
        return "—"
    return f"{_half_away_from_zero(number, digits):.{digits}f} %"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """The same relative wording the page's script keeps ticking ("3 min ago", "in 2 h")."""
    if moment is None:
        return "never"
    seconds = round(((now or datetime.now(UTC)) - moment).total_seconds())
    future, s = seconds < 0, abs(seconds)
    if s < 5:
        return "in a moment" if future else "just now"
    if s < 60:
        text = f"{s} s"
    elif s < 3600:
        text = f"{s // 60} min"
    elif s < 86400:
        h, m = divmod(s // 60, 60)
        text = f"{h} h {m} min" if m else f"{h} h"
    else:
        d = s // 86400
        text = f"{d} day{'' if d == 1 else 's'}"
    return f"in {text}" if future else f"{text} ago"


def thousands(value: int) -> str:
    return f"{value:,}"


def badge_class(kind: str, label: str | None) -> str:
    """CSS class of a grade or risk badge; the badge always shows its label as text too."""
    return f"{kind}-{re.sub('[^a-z]+', '-', label.lower())}" if label else "none"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("aoer.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fixed=fixed, percent=percent, signed=signed, ago=ago, thousands=thousands)
    env.globals.update(static=static_url, badge_class=badge_class, delivery_line=delivery_line)
    return env


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the dashboard's security headers."""
    context["status_code"] = status_code
    context.setdefault("principal", None)
    context.setdefault("active_nav", None)
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


PAGE_ERRORS: dict[int, tuple[str, str]] = {
    404: ("Not found", "There is no such page on this dashboard."),
    405: (
        "Not a page",
        "This address is what a button on a page sends, not a page to open: go back and use"
        " the button.",
    ),
}


def install_page_errors(app: FastAPI) -> None:
    """A browser sent to a dashboard address that is no page (a mistyped link, a form's
    address opened as a page) gets a page saying so, not the API's JSON; every other caller
    keeps the API's answer."""
    api_answer = app.exception_handlers[StarletteHTTPException]

    async def answer(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        wants_page = "text/html" in request.headers.get("accept", "")
        known = PAGE_ERRORS.get(exc.status_code)
        if known is None or not wants_page or not request.url.path.startswith("/dashboard"):
            answered = api_answer(request, exc)
            return await answered if inspect.isawaitable(answered) else answered
        heading, message = known
        response = page(
            "error.html", exc.status_code, heading=heading, message=message, show_login_help=False
        )
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(StarletteHTTPException, answer)
