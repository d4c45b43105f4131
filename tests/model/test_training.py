"""The trainer's pure rules: the split, normalisation, missing components, degenerate data."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from aoer.training import (
    COMPONENTS,
    V1_WEIGHTS,
    Centred,
    Policy,
    Window,
    evaluate,
    normalise,
)
from tests.model.in_memory import Dataset, moments

POLICY = Policy(min_rows=50, min_holdout_rows=10, min_tenants=2, holdout_days=14, train_days=60)


def dataset(features: np.ndarray, outcome: np.ndarray, holdout_share: float = 0.2) -> Dataset:
    rows = len(outcome)
    return Dataset(
        holdout=np.arange(rows) >= rows * (1 - holdout_share),
        tenant=np.arange(rows, dtype=np.int64) % 4,
        features=features,
        outcome=outcome,
    )


def test_the_split_holds_out_the_most_recent_days_and_trains_on_the_days_before() -> None:
    window = Window.ending(date(2026, 11, 28), POLICY)
    assert window.holdout_to == date(2026, 11, 28)
    assert window.holdout_from == date(2026, 11, 15)  # 14 days, both ends included
    assert window.train_to == date(2026, 11, 14)
    assert (window.train_to - window.train_from).days + 1 == 60


def test_normalised_weights_sum_to_exactly_one_at_stored_precision() -> None:
    rng = np.random.default_rng(3)
    features = rng.uniform(0, 100, (30, 3))
    columns = ("aeo", "geo", "ugc")
    padded = np.column_stack([np.zeros(30), features, np.zeros(30)])  # seo, ..., geolocal
    centred = Centred.of(moments(padded, features[:, 0]), [1, 2, 3])
    weights = normalise(np.array([1.0, 1.0, 1.0]), columns, centred)
    assert sum(getattr(weights, c) for c in COMPONENTS) == Decimal(1)
    assert {weights.seo, weights.geolocal} == {Decimal(0)}
    assert all(getattr(weights, c).as_tuple().exponent == -6 for c in ("aeo", "geo", "ugc"))


async def test_a_component_missing_from_the_data_gets_no_weight_and_costs_no_rows() -> None:
    rng = np.random.default_rng(4)
    features = rng.uniform(20, 90, (400, 5))
    features[:, 0] = np.nan  # nobody reports seo
    outcome = features[:, 1:4] @ np.array([0.5, 0.3, 0.2]) + rng.normal(0, 1, 400)
    result = await evaluate(dataset(features, outcome), V1_WEIGHTS, POLICY)
    assert "seo" not in result.components
    assert result.dropped_rows == 0
    assert result.challenger is not None
    assert result.challenger.seo == 0
    assert result.decision == "promoted"


async def test_outcomes_falling_with_every_component_fit_no_model() -> None:
    rng = np.random.default_rng(5)
    features = rng.uniform(20, 90, (400, 5))
    outcome = 100 - features.mean(axis=1)
    result = await evaluate(dataset(features, outcome), V1_WEIGHTS, POLICY)
    assert result.decision == "rejected"
    assert result.challenger is None
    assert "zero weight" in result.reason


async def test_constant_held_out_outcomes_cannot_prove_anything() -> None:
    rng = np.random.default_rng(6)
    features = rng.uniform(20, 90, (400, 5))
    outcome = features @ np.array([0.2] * 5)
    outcome[320:] = 50.0
    result = await evaluate(dataset(features, outcome), V1_WEIGHTS, POLICY)
    assert result.decision == "rejected"
    assert result.challenger_metrics is not None
    assert result.challenger_metrics.r2 is None
    assert "R² is undefined" in result.reason


@pytest.mark.parametrize("margin", [0.0, 0.5])
async def test_the_margin_decides_between_a_small_gain_and_no_change(margin: float) -> None:
    rng = np.random.default_rng(8)
    features = rng.uniform(20, 90, (600, 5))
    # v1's weights, slightly off: the challenger is a bit better, far from 50 % better.
    outcome = features @ np.array([0.02, 0.40, 0.33, 0.25, 0.0]) + rng.normal(0, 3, 600)
    policy = replace(POLICY, margin=margin)
    result = await evaluate(dataset(features, outcome), V1_WEIGHTS, policy)
    assert result.decision == ("promoted" if margin == 0.0 else "rejected")
    if margin:
        assert "less than the margin 50.0% (AOER_MODEL_MARGIN)" in result.reason
