"""Alert e-mail through SMTP (`AOER_SMTP_URL`, e.g. smtp://user:pass@host:587).

`smtp://` upgrades with STARTTLS when the server offers it; `smtps://` speaks TLS from the
first byte. Sent with aiosmtplib, within a timeout, so a slow server holds only its own
delivery.
"""

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from aoer.alerts.webhooks import Attempt
from aoer.alerts.wording import dealership_page, sentence, title
from aoer.errors import InvalidInput
from aoer.wording import plural

SMTP_PORT = 25
SMTPS_PORT = 465
MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise InvalidInput("AOER_SMTP_URL must look like smtp://user:pass@host:587")
    tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (SMTPS_PORT if tls else SMTP_PORT),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=tls,
    )


def _number(value: Any) -> str:
    return "-" if value is None else str(value)


def alert_message(
    sender: str,
    recipient: str,
    delivery_id: str,
    kind: str,
    data: dict[str, Any],
    *,
    dashboard_url: str | None = None,
) -> EmailMessage:
    """A plain-text message naming the dealership, what happened and the numbers, and with
    `dashboard_url` (AOER_PUBLIC_URL) a link to the dealership's page."""
    name = str(data.get("tenantName") or data.get("tenantId"))
    what = title(kind).lower()  # after the name: "Feed Motors: grade fell"
    previous = data.get("previous") or {}
    current = data.get("current") or {}
    lines = [f"{name}: {what}.", "", sentence(kind, data) + "."]
    if kind != "job_failed":
        lines += [
            "",
            f"Score: {_number(previous.get('aoerScore'))} ({previous.get('grade', '-')})"
            f" -> {_number(current.get('aoerScore'))} ({current.get('grade', '-')})",
            f"Visibility risk: {_number(previous.get('visibilityRisk'))}"
            f" ({previous.get('riskLevel', '-')}) -> {_number(current.get('visibilityRisk'))}"
            f" ({current.get('riskLevel', '-')})",
        ]
    if "reference" in data:
        reference = data["reference"]
        days = reference.get("days")
        ago = plural(days, "day") if isinstance(days, int) else f"{days} days"
        lines.append(f"Score {ago} ago: {_number(reference.get('aoerScore'))}")
    if "job" in data:
        lines.append(f"Job {data['job'].get('id')}: {data['job'].get('error')}")
    page = dealership_page(dashboard_url, data)
    if page is not None:
        lines += ["", f"Why it moved and what to do: {page}"]
    lines += ["", f"Reference: alert {data.get('alertId')}."]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"[AOER] {name}: {what}"
    message["Date"] = formatdate(usegmt=True)  # RFC 5322 requires it
    # The same id on every retry: mail clients and servers may drop a duplicate.
    message["Message-ID"] = f"<{delivery_id}@aoer.alerts>"
    message.set_content("\n".join(lines) + "\n")
    return message


async def send(server: SmtpServer, message: EmailMessage, timeout_s: float) -> Attempt:
    """Send one message, the whole conversation within `timeout_s` (aiosmtplib's own timeout
    bounds each command); never raises for the server's failures."""
    try:
        async with asyncio.timeout(timeout_s):
            await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                start_tls=None if not server.implicit_tls else False,  # None: when offered
                timeout=timeout_s,
            )
    except TimeoutError as exc:
        said = str(exc) or f"no whole conversation within {timeout_s:g} s"
        return Attempt(False, None, f"timed out: {said}"[:MAX_ERROR_CHARS])
    except (aiosmtplib.SMTPException, OSError) as exc:
        code = getattr(exc, "code", None)
        text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return Attempt(False, code if isinstance(code, int) else None, text)
    return Attempt(True, 250)
