"""The recommendation rules on hand-made summaries: a v2 model's weights and intercept in the
expected gain, and metrics from before `dataPoints` existed (adopted seed rows)."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from uuid import uuid4

from aoer.scoring.recommendations import recommend
from aoer.types import JsonObject, Summary


def summary(score: str, metrics: JsonObject, **extra: object) -> Summary:
    return Summary(
        tenant_id=uuid4(),
        aoer_score=Decimal(score),
        visibility_risk=Decimal("0.20"),
        grade="Fair",
        risk_level="Low",
        last_updated=datetime.now(UTC),
        metrics=metrics,
        **extra,  # type: ignore[arg-type]
    )


def test_weakest_component_gain_uses_the_models_weights_and_intercept() -> None:
    weights = {"version": "v2", "seo": Decimal("0.300000"), "aeo": Decimal("0.300000"),
               "geo": Decimal("0.200000"), "ugc": Decimal("0.200000"),
               "geolocal": Decimal("0.000000"), "intercept": Decimal("2.5000")}  # fmt: skip
    metrics: JsonObject = {"avgSEO": Decimal("20.00"), "avgAEO": Decimal("50.00"),
                           "avgGEO": Decimal("50.00"), "avgUGC": Decimal("50.00"),
                           "volatility": Decimal("3.00"), "dataPoints": 20,
                           "daysSinceLastData": 0}  # fmt: skip
    multiplier = 1 - Decimal("3.00") / 20
    linear = Decimal("2.5") + Decimal("0.3") * 20 + Decimal("0.3") * 50 + Decimal("0.2") * 100
    score = (linear * multiplier).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    benchmark = {"scope": "fleet", "tenants": 9, "avgSEO": Decimal("41.11"),
                 "avgAEO": Decimal("45.00"), "avgGEO": Decimal("55.00"),
                 "avgUGC": Decimal("50.00"), "volatility": Decimal("2.00")}  # fmt: skip
    found = recommend(summary(str(score), metrics, weights=weights, benchmark=benchmark))
    [advice] = [r for r in found if r.id == "weakest_component"]
    seo_gain = ((linear + Decimal("0.3") * (Decimal("41.11") - 20)) * multiplier).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    ) - score
    geo_gain = ((linear + Decimal("0.2") * 5) * multiplier).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    ) - score
    assert seo_gain > geo_gain > 0
    assert (advice.component, advice.expected_gain) == ("seo", seo_gain)
    assert "SEO" in advice.message
    assert "fleet median (9 dealerships) of 41.11" in advice.message


def test_metrics_without_data_points_still_get_the_other_rules() -> None:
    metrics: JsonObject = {"avgAEO": Decimal("60.00"), "avgGEO": Decimal("50.00"),
                           "avgUGC": Decimal("40.00"), "volatility": Decimal("16.00"),
                           "daysSinceLastData": 9}  # fmt: skip
    ids = [r.id for r in recommend(summary("36.05", metrics))]
    assert ids == ["stale_data", "high_volatility"]


def test_no_window_data_is_one_critical_rule() -> None:
    found = recommend(summary("0.00", {"error": "No data available"}))
    assert [(r.id, r.severity) for r in found] == [("no_data", "critical")]
