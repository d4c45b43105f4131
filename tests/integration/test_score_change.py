"""Why the score moved (DESIGN §13): every recompute returns and records `previous` and the
delta split into parts that add up to the delta to the cent, over random signal sets and
model changes, checked against an independent Decimal computation of the documented split."""

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from aoer.constants import RECOMPUTE_EVENT
from aoer.db.pool import Connection
from aoer.queue import enqueue
from aoer.types import Score
from tests.conftest import AddSignals, MakeTenant, session_of

COMPONENTS = ("seo", "aeo", "geo", "ugc", "geolocal")
METRIC_KEYS = {"seo": "avgSEO", "aeo": "avgAEO", "geo": "avgGEO", "ugc": "avgUGC"}
METRIC_KEYS["geolocal"] = "avgGeolocal"
CENT = Decimal("0.01")
V1 = {"seo": Decimal(0), "aeo": Decimal("0.4"), "geo": Decimal("0.35"), "ugc": Decimal("0.25")}
V1["geolocal"] = Decimal(0)

TENANTS = 30
ROUNDS = 8  # 240 recomputes with a previous summary, most of them under a model change


def cents(value: Decimal) -> Decimal:
    """PostgreSQL's numeric round(x, 2): half away from zero."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Model:
    version: str
    weights: dict[str, Decimal]
    intercept: Decimal


@dataclass(frozen=True)
class Side:
    """One end of a change as the documented split sees it."""

    score: Decimal
    components: dict[str, Decimal]  # every component's 30-day average (0 without data)
    multiplier: Decimal
    model: Model
    has_data: bool


def random_model(rng: random.Random, number: int) -> Model:
    micro = [rng.choice([0, rng.randint(0, 400_000)]) for _ in range(4)]
    micro.append(1_000_000 - sum(micro))
    rng.shuffle(micro)
    weights = {c: Decimal(m) / 1_000_000 for c, m in zip(COMPONENTS, micro, strict=True)}
    intercept = rng.choice([Decimal(0), Decimal(rng.randint(-150_000, 150_000)) / 10_000])
    return Model(f"v{number}", weights, intercept)


def random_signals(rng: random.Random) -> list[dict[str, Any]]:
    """A few days (some outside the 30-day window, some without aeo), steady or noisy."""
    if rng.random() < 0.08:
        return []
    level, noise = rng.uniform(5, 95), rng.choice([0.5, 2, 4, 8, 30])
    rows = []
    for day in rng.sample(range(0, 40), rng.randint(1, 12)):

        def value(null_rate: float) -> str | None:
            if rng.random() < null_rate:
                return None
            v = min(100.0, max(0.0, rng.gauss(level, noise)))
            return f"{v:.2f}"

        rows.append(
            {
                "days_ago": day,
                "aeo": value(0.1),
                "seo": value(0.3),
                "geo": value(0.3),
                "ugc": value(0.3),
                "geolocal": value(0.3),
            }
        )
    return rows


def side_of(score: Score, rows: list[dict[str, Any]], model: Model) -> Side:
    """The terms of a stored score, recomputed from the signals in Decimal."""
    window = [r for r in rows if r["days_ago"] <= 30 and r["aeo"] is not None]
    if not window:
        assert score.aoer_score == 0
        assert score.metrics == {"error": "No data available"}
        return Side(
            score.aoer_score, dict.fromkeys(COMPONENTS, Decimal(0)), Decimal(1), model, False
        )
    components = {}
    for c in COMPONENTS:
        values = [Decimal(r[c]) for r in window if r[c] is not None]
        components[c] = cents(sum(values, Decimal(0)) / len(values)) if values else Decimal("0.00")
        if METRIC_KEYS[c] in score.metrics:
            assert Decimal(str(score.metrics[METRIC_KEYS[c]])) == components[c], c
    volatility = Decimal(str(score.metrics["volatility"]))
    multiplier = 1 - min(volatility / 20, Decimal("0.30"))
    linear = model.intercept + sum(model.weights[c] * components[c] for c in COMPONENTS)
    assert score.aoer_score == cents(max(Decimal(0), min(Decimal(100), linear * multiplier)))
    assert score.metrics["modelVersion"] == model.version
    return Side(score.aoer_score, components, multiplier, model, True)


def expected_change(old: Side, new: Side) -> dict[str, Decimal]:
    """The documented split (migration 0011), independently."""
    w0 = old.model.weights if old.has_data else new.model.weights
    w1 = new.model.weights
    b0 = old.model.intercept if old.has_data else Decimal(0)
    b1 = new.model.intercept if new.has_data else Decimal(0)
    c0, c1, m0, m1 = old.components, new.components, old.multiplier, new.multiplier
    parts = {c: cents(w0[c] * (c1[c] - c0[c]) * m0) for c in COMPONENTS}
    model = b1 - b0 + sum((w1[c] - w0[c]) * c1[c] for c in COMPONENTS)
    linear1 = b1 + sum(w1[c] * c1[c] for c in COMPONENTS)
    parts["model"] = cents(model * m0)
    parts["volatility"] = cents(linear1 * (m1 - m0))
    parts["rounding"] = (new.score - old.score) - sum(parts.values(), Decimal(0))
    return {k: v for k, v in parts.items() if k not in COMPONENTS or w0[k] > 0 or w1[k] > 0}


async def make_champion(conn: Connection, model: Model) -> None:
    w = model.weights
    await conn.execute("UPDATE model_weights SET status = 'retired' WHERE status = 'champion'")
    await conn.execute(
        "INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal, intercept)"
        " VALUES (%s, 'champion', %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (version) DO UPDATE SET status = 'champion'",
        (model.version, w["seo"], w["aeo"], w["geo"], w["ugc"], w["geolocal"], model.intercept),
    )


async def replace_signals(conn: Connection, add: AddSignals, tenant: UUID, rows: list[Any]) -> None:
    await conn.execute("DELETE FROM aiv_raw_signals WHERE dealer_id = %s", (tenant,))
    await add(tenant, rows)


def as_decimals(change: dict[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(str(v)) for k, v in change.items()}


async def test_change_parts_add_up_to_the_delta_over_random_signals_and_models(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    rng = random.Random(1414)
    models = [Model("v1", V1, Decimal(0))]
    tenants = [await make_tenant(f"Random Motors {i}") for i in range(TENANTS)]
    signals: dict[UUID, list[dict[str, Any]]] = {}
    for t in tenants:
        signals[t] = random_signals(rng)
        await add_signals(t, signals[t])
    first = await session_of(conn).scores.recompute(tenants)
    assert all(s.previous is None and s.change is None for s in first)
    sides = {s.tenant_id: side_of(s, signals[s.tenant_id], models[-1]) for s in first}
    checked = model_changes = 0
    for _ in range(ROUNDS):
        pick = rng.random()
        if pick < 0.5:  # a new model is promoted
            models.append(random_model(rng, len(models) + 1))
        elif pick < 0.7 and len(models) > 1:  # a rollback to an earlier one
            models.append(rng.choice(models[:-1]))
        champion = models[-1]
        await make_champion(conn, champion)
        for t in tenants:
            if rng.random() < 0.7:
                signals[t] = random_signals(rng)
                await replace_signals(conn, add_signals, t, signals[t])
        scores = await session_of(conn).scores.recompute(tenants)
        for s in scores:
            old, new = sides[s.tenant_id], side_of(s, signals[s.tenant_id], champion)
            assert s.previous == {
                "aoerScore": old.score,
                "visibilityRisk": s.previous["visibilityRisk"] if s.previous else None,
                "modelVersion": old.model.version if old.has_data else None,
            }
            assert s.change is not None
            change = as_decimals(s.change)
            assert sum(change.values(), Decimal(0)) == s.aoer_score - old.score
            assert all(v == cents(v) for v in change.values())
            assert change == expected_change(old, new)
            model_changes += old.model != new.model and old.has_data
            sides[s.tenant_id] = new
            checked += 1
    assert checked >= 200, checked
    assert model_changes >= 50, model_changes


async def test_v1_change_lists_its_three_components(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """A v1 tenant whose aeo rose: the whole move is in `aeo` (volatility unchanged)."""
    tenant = await make_tenant()
    await add_signals(tenant, [{"days_ago": d, "aeo": "50.00", "geo": "40.00"} for d in range(6)])
    await session_of(conn).scores.recompute([tenant])
    await conn.execute("UPDATE aiv_raw_signals SET aeo = 60 WHERE dealer_id = %s", (tenant,))
    [score] = await session_of(conn).scores.recompute([tenant])
    assert score.previous == {
        "aoerScore": Decimal("34.00"),
        "visibilityRisk": Decimal("0.20"),
        "modelVersion": "v1",
    }
    assert score.aoer_score == Decimal("38.00")
    assert score.change == {
        "aeo": Decimal("4.00"),
        "geo": Decimal("0.00"),
        "ugc": Decimal("0.00"),
        "volatility": Decimal("0.00"),
        "model": Decimal("0.00"),
        "rounding": Decimal("0.00"),
    }


async def test_recompute_event_carries_previous_and_change(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    """The worker's `aoer_recompute` events: null on the first, the split on the next."""
    tenant = await make_tenant()
    await add_signals(tenant, [{"days_ago": d, "aeo": "70.00"} for d in range(5)])
    session = session_of(conn)
    for _ in range(2):
        await enqueue(session, tenant, "medium")
        jobs = await session.jobs.claim("w-change", 10)
        await session.jobs.complete("w-change", [j.id for j in jobs])
        await conn.execute(
            "UPDATE aiv_raw_signals SET aeo = aeo - 10 WHERE dealer_id = %s", (tenant,)
        )
    cur = await conn.execute(
        "SELECT event_data FROM metrics_events WHERE tenant_id = %s AND event_type = %s"
        " ORDER BY created_at",
        (tenant, RECOMPUTE_EVENT),
    )
    first, second = [r["event_data"] for r in await cur.fetchall()]
    assert first["previous"] is None
    assert first["change"] is None
    assert second["previous"] == {
        "aoerScore": Decimal("28.00"),
        "visibilityRisk": Decimal("0.20"),
        "modelVersion": "v1",
    }
    assert second["aoerScore"] == Decimal("24.00")
    assert as_decimals(second["change"])["aeo"] == Decimal("-4.00")
    assert sum(as_decimals(second["change"]).values(), Decimal(0)) == Decimal("-4.00")
