"""Synthetic dealerships whose outcomes follow known weights (or are pure noise), and an
independent Decimal recomputation of the score from stored weights and signals."""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Literal, cast
from uuid import UUID

import numpy as np

from aoer.bootstrap.worker import scheduled_jobs
from aoer.config import Settings
from aoer.constants import MODEL_TICK
from aoer.db.pool import Connection
from aoer.training import COMPONENTS, Policy
from aoer.worker.scheduler import ScheduledJob

# The truth the trainer must find: far from v1 (which ignores seo and geolocal).
TRUE_WEIGHTS = {"seo": 0.10, "aeo": 0.20, "geo": 0.30, "ugc": 0.15, "geolocal": 0.25}
NOISE_SD = 2.0  # outcome noise, in AIV points
# 10 tenants x 90 days: 760 training rows and 140 held-out rows per run.
POLICY = Policy(
    holdout_days=14,
    train_days=76,
    min_rows=300,
    min_holdout_rows=60,
    min_tenants=5,
    margin=0.02,
    min_r2=0.0,
)
CENT = Decimal("0.01")

MONDAY_4AM = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def weekly_training() -> ScheduledJob:
    settings = Settings(  # type: ignore[call-arg]
        AOER_MODEL_HOLDOUT_DAYS=POLICY.holdout_days,
        AOER_MODEL_TRAIN_DAYS=POLICY.train_days,
        AOER_MODEL_MIN_ROWS=POLICY.min_rows,
        AOER_MODEL_MIN_HOLDOUT_ROWS=POLICY.min_holdout_rows,
        AOER_MODEL_MIN_TENANTS=POLICY.min_tenants,
    )
    [job] = [j for j in scheduled_jobs(settings) if j.name == MODEL_TICK]
    assert job.cron == "0 4 * * 1"  # the default: weekly, Monday 04:00 UTC
    return job


async def seed(
    conn: Connection,
    *,
    tenants: int = 10,
    days: int = 90,
    outcome: Literal["linear", "noise"] = "linear",
    rng_seed: int = 7,
) -> list[UUID]:
    """Create `tenants` dealerships with `days` daily rows ending today; returns their ids."""
    rng = np.random.default_rng(rng_seed)
    cur = await conn.execute(
        "INSERT INTO tenants (name) SELECT 'Synthetic ' || g FROM generate_series(1, %s) g"
        " RETURNING id",
        (tenants,),
    )
    ids = [cast(UUID, r["id"]) for r in await cur.fetchall()]
    cur = await conn.execute("SELECT current_date AS today")
    today = cast(date, (await cur.fetchone() or {})["today"])
    truth = np.array([TRUE_WEIGHTS[c] for c in COMPONENTS])
    async with (
        conn.cursor() as cursor,
        cursor.copy(
            "COPY aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv)"
            " FROM STDIN"
        ) as copy,
    ):
        for tenant in ids:
            for day in range(days):
                x = rng.uniform(20, 90, len(COMPONENTS)).round(2)
                if outcome == "linear":
                    y = float(x @ truth + rng.normal(0, NOISE_SD))
                else:
                    y = float(rng.uniform(0, 100))
                values = [f"{v:.2f}" for v in (*x, min(max(y, 0.0), 100.0))]
                await copy.write_row((tenant, today - timedelta(days=day), *values))
    return ids


async def expected_score(conn: Connection, tenant: UUID, version: str) -> Decimal:
    """DESIGN §3 with `version`'s stored weights, recomputed here in Decimal (not by the SQL)."""
    cur = await conn.execute("SELECT * FROM model_weights WHERE version = %s", (version,))
    model = await cur.fetchone()
    assert model is not None
    cur = await conn.execute(
        "SELECT current_date - date AS days_ago, seo, aeo, geo, ugc, geolocal"
        " FROM aiv_raw_signals WHERE dealer_id = %s",
        (tenant,),
    )
    window = [r for r in await cur.fetchall() if 0 <= r["days_ago"] <= 30 and r["aeo"] is not None]  # type: ignore[operator]
    assert window, "every synthetic tenant has fresh rows"

    def average(component: str) -> Decimal:
        values = [cast(Decimal, r[component]) for r in window if r[component] is not None]
        if not values:
            return Decimal(0)
        return (sum(values, Decimal(0)) / len(values)).quantize(CENT, ROUND_HALF_UP)

    with localcontext() as ctx:
        ctx.prec = 50
        aeo = [cast(Decimal, r["aeo"]) for r in window]
        mean = sum(aeo, Decimal(0)) / len(aeo)
        variance = sum(((a - mean) ** 2 for a in aeo), Decimal(0)) / (len(aeo) - 1)
        volatility = variance.sqrt().quantize(CENT, ROUND_HALF_UP)
        weighted = cast(Decimal, model["intercept"]) + sum(
            (cast(Decimal, model[c]) * average(c) for c in COMPONENTS), Decimal(0)
        )
        raw = weighted * (1 - min(volatility / 20, Decimal("0.30")))
        return min(max(raw, Decimal(0)), Decimal(100)).quantize(CENT, ROUND_HALF_UP)
