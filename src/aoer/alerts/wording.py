"""How an alert is named in words: its title and a one-line summary of its numbers.

The dashboard's alert feed says the same in JavaScript (`AlertFeed.title` and `.summary` in
`dashboard/static/alerts.js`); keep the two in step, so a marker on the trend chart and the
feed's line for the same alert read alike.
"""

import math
from collections.abc import Mapping
from typing import Any, Final

from aoer.wording import plural

TITLES: Final = {
    "risk_level_up": "Visibility risk rose",
    "grade_down": "Grade fell",
    "score_drop": "Score dropped",
    "stale_data": "No recent data",
    "job_failed": "Recompute failed",
}
NO_NUMBER: Final = "—"  # what the feed shows for a missing number


def title(kind: str) -> str:
    """A few words: "Grade fell"."""
    return TITLES.get(kind, kind)


def summary(kind: str, data: dict[str, Any]) -> str:
    """The numbers behind the alert: "score 62.10 (Good) → 55.00 (Fair)"; empty if unknown."""
    previous = data.get("previous") or {}
    current = data.get("current") or {}
    if kind == "risk_level_up":
        return (
            f"risk {_fixed(previous.get('visibilityRisk'))} ({previous.get('riskLevel')}) → "
            f"{_fixed(current.get('visibilityRisk'))} ({current.get('riskLevel')})"
        )
    if kind == "grade_down":
        return (
            f"score {_fixed(previous.get('aoerScore'))} ({previous.get('grade')}) → "
            f"{_fixed(current.get('aoerScore'))} ({current.get('grade')})"
        )
    if kind == "score_drop":
        reference = data.get("reference") or {}
        return (
            f"score {_fixed(current.get('aoerScore'))}, {_fixed(data.get('drop'))} below "
            f"{_days(reference.get('days'))} ago"
        )
    if kind == "stale_data":
        days = current.get("daysSinceLastData")
        if days is None:
            return "no data in the score's window"
        return f"{_days(days)} since the last data"
    if kind == "job_failed":
        job = data.get("job") or {}
        return str(job.get("error") or "the job ran out of attempts")
    return ""


def sentence(kind: str, data: dict[str, Any]) -> str:
    """Title and numbers as one line: "Grade fell: score 62.10 (Good) → 55.00 (Fair)"."""
    numbers = summary(kind, data)
    return f"{title(kind)}: {numbers}" if numbers else title(kind)


def headline(kind: str, data: dict[str, Any]) -> str:
    """The alert as one line naming its dealership, for a person reading a webhook's body:
    "Feed Motors: Grade fell: score 62.10 (Good) → 55.00 (Fair)"."""
    return f"{data.get('tenantName') or data.get('tenantId')}: {sentence(kind, data)}"


def dealership_page(public_url: str | None, data: dict[str, Any]) -> str | None:
    """The alerted dealership's page (why it moved, what to do), where AOER_PUBLIC_URL says
    the dashboard is."""
    if not public_url or not data.get("tenantId"):
        return None
    return f"{public_url.rstrip('/')}/dashboard/tenant/{data['tenantId']}"


def delivery_problem(error: str) -> str:
    """A failed send's last error in a few words (the whole of it in the tag's tooltip):
    `ConnectError: [Errno 111] Connection refused` is "could not connect"."""
    if error.startswith("ConnectError"):
        return "could not connect"
    if error.startswith("timed out"):
        return "timed out"
    short = error.split(";")[0].strip()
    return short if len(short) <= 60 else short[:59] + "…"


def delivery_line(delivery: Mapping[str, Any], hosts: Mapping[str, str]) -> str:
    """One delivery of the feed (its JSON, as `alerts.deliveries` holds it), as the alerts
    page and `aoer alerts list` say it: `webhook hooks.example.com: pending after 3 attempts
    (could not connect)`. `hosts`: endpoint id → host (`hosts_by_id`)."""
    endpoint = str(delivery.get("endpointId"))
    to = delivery.get("email") or (f"webhook {hosts[endpoint]}" if endpoint in hosts else "webhook")
    line = f"{to}: {delivery['status']} after {plural(delivery['attempts'], 'attempt')}"
    if delivery.get("lastStatusCode"):
        return f"{line} (HTTP {delivery['lastStatusCode']})"
    error = delivery.get("lastError")
    if error and delivery["status"] != "delivered":
        return f"{line} ({delivery_problem(error)})"
    return line


def _days(value: object) -> str:
    return plural(value, "day") if isinstance(value, int) else f"{value} days"


def _fixed(value: object) -> str:
    """A number with two decimals, as the feed's `AOER.fixed(value, 2)` shows it."""
    if value is None or isinstance(value, bool):
        return NO_NUMBER
    try:
        number = float(str(value))
    except ValueError:
        return NO_NUMBER
    return f"{number:.2f}" if math.isfinite(number) else NO_NUMBER
