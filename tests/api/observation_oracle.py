"""An independent oracle for the DESIGN §14 window metrics: exact fractions, rounded half away
from zero in Python, never the SQL under test."""

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

WINDOW_DAYS = 30
TOP = 10


def rounded(value: Fraction | None, places: int) -> float | None:
    """`value` rounded to `places` decimals, half away from zero, as the JSON number."""
    if value is None:
        return None
    scaled = abs(value) * 10**places
    whole = int(scaled + Fraction(1, 2))  # floor(x + 1/2) for x ≥ 0: half goes up
    sign = -1 if value < 0 else 1
    return float(Decimal(sign * whole).scaleb(-places))


def share(part: int, whole: int) -> Fraction | None:
    return None if whole == 0 else Fraction(part, whole)


def mean(values: list[Fraction]) -> Fraction | None:
    return None if not values else sum(values, Fraction(0)) / len(values)


def _metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answers = len(rows)
    own = sum(1 for r in rows if r["mentioned"])
    cited = sum(1 for r in rows if r["cited"])
    rivals = sum(len(set(r.get("competitors", []))) for r in rows)
    positions = [
        Fraction(r["position"]) for r in rows if r["mentioned"] and r.get("position") is not None
    ]
    sentiments = [
        Fraction(Decimal(str(r["sentiment"]))) for r in rows if r.get("sentiment") is not None
    ]
    return {
        "answers": answers,
        "visibility": rounded(share(own, answers), 4),
        "citationRate": rounded(share(cited, answers), 4),
        "avgPosition": rounded(mean(positions), 2),
        "shareOfVoice": rounded(share(own, own + rivals), 4),
        "sentiment": rounded(mean(sentiments), 2),
    }


def latest(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the table holds: the last row sent for each dealer, day, engine and prompt."""
    kept: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in observations:
        kept[(row["dealerId"], row["date"], row["engine"], row["prompt"].strip())] = row
    return list(kept.values())


def engines_report(tenant: str, sent: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """GET /api/aoer/engines for `tenant` after `sent` was posted (in order)."""
    start = today - timedelta(WINDOW_DAYS)
    rows = [
        r
        for r in latest(sent)
        if r["dealerId"] == tenant and start <= date.fromisoformat(r["date"]) <= today
    ]
    engines = sorted({r["engine"] for r in rows})
    own = sum(1 for r in rows if r["mentioned"])
    named: Counter[str] = Counter()
    for r in rows:
        named.update(set(r.get("competitors", [])))
    total = own + sum(named.values())
    leaders = sorted(named.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:TOP]
    urls: Counter[str] = Counter()
    for r in rows:
        urls.update(set(r.get("citedUrls", [])))
    top_urls = sorted(urls.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:TOP]
    return {
        "tenantId": tenant,
        "window": {"from": start.isoformat(), "to": today.isoformat()},
        "overall": _metrics(rows),
        "engines": [
            {"engine": e, **_metrics([r for r in rows if r["engine"] == e])} for e in engines
        ],
        "competitors": [
            {"name": n, "mentions": m, "shareOfVoice": rounded(share(m, total), 4)}
            for n, m in leaders
        ],
        "topCitedUrls": [{"url": u, "count": c} for u, c in top_urls],
    }
