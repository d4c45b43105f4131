"""Method 3, the design being replaced, ported faithfully: a Redis list is the queue (one LPUSH
per tenant, one BRPOP per job), and a worker fetches each tenant's rows into Python,
computes the score there with exact `decimal` arithmetic, then upserts the summary and
inserts the event as two separate statements (each its own transaction, as the seed's
REST calls were).

Run as `python bench/legacy.py worker DATABASE_URL REDIS_URL KEY [--drain]`.
"""

import argparse
import json
import signal
import sys
import time
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

import psycopg
import redis

CENT = Decimal("0.01")
EXACT = Context(prec=60)  # far beyond any value here: sums and products stay exact

FETCH = (
    "SELECT date, aeo, geo, ugc FROM aiv_raw_signals"
    " WHERE dealer_id = %s AND date BETWEEN %s::date - 30 AND %s::date ORDER BY date"
)
UPSERT = (
    "INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk, metrics, last_updated)"
    " VALUES (%s, %s, %s, %s::jsonb, now())"
    " ON CONFLICT (tenant_id) DO UPDATE SET aoer_score = EXCLUDED.aoer_score,"
    " visibility_risk = EXCLUDED.visibility_risk, metrics = EXCLUDED.metrics,"
    " last_updated = EXCLUDED.last_updated, updated_at = now()"
)
EVENT = (
    "INSERT INTO metrics_events (tenant_id, event_type, event_data)"
    " VALUES (%s, 'aoer_recompute', %s::jsonb)"
)


def _round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _grade(score: Decimal) -> str:
    if score >= 80:
        return "Excellent"
    if score >= 60:
        return "Good"
    if score >= 40:
        return "Fair"
    return "Poor"


def _risk_level(risk: Decimal) -> str:
    if risk <= Decimal("0.2"):
        return "Low"
    if risk <= Decimal("0.5"):
        return "Medium"
    if risk <= Decimal("0.8"):
        return "High"
    return "Critical"


def _json(pairs: list[tuple[str, Any]]) -> str:
    """A JSON object with Decimal values written exactly (60.00 stays 60.00)."""
    parts = []
    for key, value in pairs:
        text = str(value) if isinstance(value, Decimal | int) else json.dumps(value)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def compute(rows: list[tuple[date, Any, Any, Any]], today: date) -> tuple[Decimal, Decimal, str]:
    """The AOER v1 score of DESIGN §3 in Python decimals: (score, risk, metrics JSON)."""
    window = [r for r in rows if r[1] is not None]
    n = len(window)
    if n == 0:
        return Decimal("0.00"), Decimal("1.00"), '{"error": "No data available"}'
    with localcontext(EXACT):
        aeo = [Decimal(r[1]) for r in window]
        geo = [Decimal(r[2]) for r in window if r[2] is not None]
        ugc = [Decimal(r[3]) for r in window if r[3] is not None]
        avg_aeo = _round2(sum(aeo, Decimal(0)) / n)
        avg_geo = _round2(sum(geo, Decimal(0)) / len(geo)) if geo else Decimal("0.00")
        avg_ugc = _round2(sum(ugc, Decimal(0)) / len(ugc)) if ugc else Decimal("0.00")
        if n > 1:
            mean = sum(aeo, Decimal(0)) / n
            variance = sum(((x - mean) ** 2 for x in aeo), Decimal(0)) / (n - 1)
            volatility = _round2(variance.sqrt())
        else:
            volatility = Decimal("0.00")
        days_since = (today - max(r[0] for r in window)).days
        weighted = avg_aeo * Decimal("0.40") + avg_geo * Decimal("0.35") + avg_ugc * Decimal("0.25")
        damping = Decimal(1) - min(volatility / 20, Decimal("0.30"))
        score = _round2(weighted * damping)
    if n < 5:
        risk = Decimal("0.80")
    elif days_since > 7:
        risk = Decimal("0.60")
    elif volatility > 15:
        risk = Decimal("0.40")
    else:
        risk = Decimal("0.20")
    metrics = _json(
        [
            ("avgAEO", avg_aeo),
            ("avgGEO", avg_geo),
            ("avgUGC", avg_ugc),
            ("volatility", volatility),
            ("dataPoints", n),
            ("daysSinceLastData", days_since),
            ("grade", _grade(score)),
            ("riskLevel", _risk_level(risk)),
            ("modelVersion", "v1"),
        ]
    )
    return score, risk, metrics


def enqueue_all(redis_url: str, key: str, tenant_ids: list[str]) -> None:
    """The seed's cron: one LPUSH round trip per tenant."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(key)
        for tenant_id in tenant_ids:
            payload = {"tenantId": tenant_id, "priority": "low", "enqueuedAt": time.time()}
            client.lpush(key, json.dumps(payload))
    finally:
        client.close()


def work(database_url: str, redis_url: str, key: str, *, drain: bool) -> int:
    """Pop one job at a time until stopped (or, draining, until the list is empty)."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    client = redis.Redis.from_url(redis_url)
    done = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        # The seed took "today" from the clock once per run; so does the port (UTC, like the
        # database's CURRENT_DATE that the SQL methods use).
        row = conn.execute("SELECT current_date").fetchone()
        assert row is not None
        today: date = row[0]
        while not stopping:
            popped = client.brpop([key], timeout=1)
            if popped is None:
                if drain:
                    break
                continue
            tenant_id = json.loads(popped[1])["tenantId"]
            rows = conn.execute(FETCH, (tenant_id, today, today)).fetchall()
            score, risk, metrics = compute(rows, today)
            conn.execute(UPSERT, (tenant_id, score, risk, metrics))
            event = (
                f'{{"priority": "low", "aoerScore": {score}, "visibilityRisk": {risk},'
                f' "metrics": {metrics}, "workerId": "legacy"}}'
            )
            conn.execute(EVENT, (tenant_id, event))
            done += 1
    client.close()
    print(f"legacy worker done: {done} tenants", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("database_url")
    worker.add_argument("redis_url")
    worker.add_argument("key")
    worker.add_argument("--drain", action="store_true")
    args = parser.parse_args()
    return work(args.database_url, args.redis_url, args.key, drain=args.drain)


if __name__ == "__main__":
    sys.exit(main())
