"""Fit, evaluate and judge a challenger model: pure numpy/scipy, no database.

The model is linear in the five components, `outcome ≈ intercept + Σ weight·component`,
fitted with non-negative weights (SciPy's NNLS) on tenant-days before the holdout, then
normalised so the weights sum to 1 (the score stays on 0-100). Champion and challenger are
then judged on the same held-out tenant-days, with exactly the weights the score would use.
"""

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

COMPONENTS: Final = ("seo", "aeo", "geo", "ugc", "geolocal")
WEIGHT_PLACES: Final = Decimal("0.000001")  # model_weights.<component> numeric(7,6)
INTERCEPT_PLACES: Final = Decimal("0.0001")  # model_weights.intercept numeric(7,4)
INTERCEPT_BOUND: Final = Decimal(100)
# A component present on fewer rows than this share, on the training days or on the held-out
# days, is left out of the fit (weight 0), so that keeping only complete rows does not throw
# most of the data away (a component that stopped arriving would empty the holdout).
MIN_COMPONENT_COVERAGE: Final = 0.8
ZERO_FIT: Final = 1e-9  # raw weights summing to less than this are "no signal at all"

Decision = Literal["promoted", "rejected", "skipped"]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Weights:
    """A model as the score uses it: normalised component weights plus an intercept."""

    seo: Decimal
    aeo: Decimal
    geo: Decimal
    ugc: Decimal
    geolocal: Decimal
    intercept: Decimal = Decimal(0)

    def vector(self) -> FloatArray:
        return np.array([float(getattr(self, c)) for c in COMPONENTS], dtype=np.float64)

    def used(self) -> set[str]:
        return {c for c in COMPONENTS if getattr(self, c) > 0}


V1_WEIGHTS: Final = Weights(
    Decimal(0), Decimal("0.40"), Decimal("0.35"), Decimal("0.25"), Decimal(0), Decimal(0)
)


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of a training run (AOER_MODEL_* settings), stored with every run."""

    holdout_days: int = 14
    train_days: int = 180
    min_rows: int = 500
    min_holdout_rows: int = 100
    min_tenants: int = 5
    margin: float = 0.02
    min_r2: float = 0.0


@dataclass(frozen=True, slots=True)
class Window:
    """The fixed split rule: the last `holdout_days` up to `as_of` are held out, the
    `train_days` before them are trained on."""

    as_of: date
    train_from: date
    train_to: date
    holdout_from: date
    holdout_to: date

    @classmethod
    def ending(cls, as_of: date, policy: Policy) -> "Window":
        holdout_from = as_of - timedelta(days=policy.holdout_days - 1)
        train_to = holdout_from - timedelta(days=1)
        return cls(
            as_of, train_to - timedelta(days=policy.train_days - 1), train_to, holdout_from, as_of
        )


@dataclass(frozen=True, slots=True)
class Dataset:
    """Tenant-days with a known outcome; missing components are NaN."""

    holdout: NDArray[np.bool_]
    tenant: NDArray[np.int64]
    features: FloatArray  # rows × COMPONENTS
    outcome: FloatArray

    def checksum(self) -> str:
        """SHA-256 of the exact training data, so a re-run can prove it saw the same rows."""
        digest = hashlib.sha256()
        for array in (self.holdout, self.tenant, self.features, self.outcome):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Metrics:
    rmse: float
    mae: float
    r2: float | None  # None when held-out outcomes do not vary


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything a run decided and why; `challenger` is None when nothing was fitted."""

    decision: Decision
    reason: str
    components: tuple[str, ...]
    train_rows: int
    holdout_rows: int
    train_tenants: int
    holdout_tenants: int
    dropped_rows: int
    challenger: Weights | None
    champion_metrics: Metrics | None
    challenger_metrics: Metrics | None
    details: dict[str, object]


def fit(features: FloatArray, outcome: FloatArray) -> tuple[FloatArray, float]:
    """Least squares with non-negative weights and a free intercept (centred NNLS)."""
    x_mean = features.mean(axis=0)
    y_mean = float(outcome.mean())
    from scipy.optimize import nnls  # imported here: SciPy costs every CLI start ~0.3 s

    coefficients, _ = nnls(features - x_mean, outcome - y_mean)
    coefficients = np.asarray(coefficients, dtype=np.float64)
    return coefficients, y_mean - float(x_mean @ coefficients)


def normalise(
    coefficients: FloatArray, columns: tuple[str, ...], features: FloatArray, outcome: FloatArray
) -> Weights:
    """Weights summing to exactly 1 at the stored precision, and the least-squares intercept
    that goes with them on the training rows."""
    raw = {
        c: Decimal(float(w)) / Decimal(float(coefficients.sum()))
        for c, w in zip(columns, coefficients, strict=True)
    }
    weights = {
        c: raw.get(c, Decimal(0)).quantize(WEIGHT_PLACES, ROUND_HALF_EVEN) for c in COMPONENTS
    }
    largest = max(COMPONENTS, key=lambda c: weights[c])
    weights[largest] += Decimal(1) - sum(weights.values())
    vector = np.array([float(weights[c]) for c in columns], dtype=np.float64)
    intercept = Decimal(float((outcome - features @ vector).mean())).quantize(INTERCEPT_PLACES)
    intercept = max(-INTERCEPT_BOUND, min(INTERCEPT_BOUND, intercept))
    return Weights(**weights, intercept=intercept)


def predict(weights: Weights, features: FloatArray) -> FloatArray:
    """What the score would say for these rows, clamped to 0-100 like the score."""
    prediction = float(weights.intercept) + features @ weights.vector()
    return np.clip(prediction, 0.0, 100.0)


def measure(outcome: FloatArray, prediction: FloatArray) -> Metrics:
    error = outcome - prediction
    total = float(((outcome - outcome.mean()) ** 2).sum())
    r2 = 1.0 - float((error**2).sum()) / total if total > 0 else None
    return Metrics(float(np.sqrt((error**2).mean())), float(np.abs(error).mean()), r2)


def _shortfalls(counts: dict[str, int], policy: Policy) -> list[str]:
    needs = [
        ("train_rows", policy.min_rows, "training rows", "AOER_MODEL_MIN_ROWS"),
        ("holdout_rows", policy.min_holdout_rows, "held-out rows", "AOER_MODEL_MIN_HOLDOUT_ROWS"),
        ("train_tenants", policy.min_tenants, "tenants in training", "AOER_MODEL_MIN_TENANTS"),
        ("holdout_tenants", policy.min_tenants, "tenants held out", "AOER_MODEL_MIN_TENANTS"),
    ]
    return [
        f"{counts[key]} {label} (needs {need}, {setting})"
        for key, need, label, setting in needs
        if counts[key] < need
    ]


def _judge(champion: Metrics, challenger: Metrics, policy: Policy) -> tuple[Decision, str]:
    """Promote only a challenger that is clearly better on the held-out days."""
    gain = (champion.rmse - challenger.rmse) / champion.rmse if champion.rmse > 0 else 0.0
    r2 = "undefined" if challenger.r2 is None else f"{challenger.r2:.3f}"
    summary = (
        f"held-out RMSE {challenger.rmse:.3f} vs champion {champion.rmse:.3f} "
        f"({gain:+.1%}), MAE {challenger.mae:.3f} vs {champion.mae:.3f}, R² {r2}"
    )
    failures = []
    if challenger.r2 is None:
        failures.append("held-out outcomes do not vary, so R² is undefined")
    elif challenger.r2 < policy.min_r2:
        failures.append(
            f"R² {challenger.r2:.3f} is below the minimum {policy.min_r2:.3f} "
            "(AOER_MODEL_MIN_R2): the components do not explain the outcomes"
        )
    if gain < policy.margin:
        failures.append(
            f"RMSE improves by {gain:.1%}, less than the margin {policy.margin:.1%} "
            "(AOER_MODEL_MARGIN)"
        )
    if challenger.mae > champion.mae:
        failures.append("MAE is worse than the champion's")
    if failures:
        return "rejected", "; ".join(failures) + f" — {summary}"
    return "promoted", f"clearly better on held-out days — {summary}"


def evaluate(data: Dataset, champion: Weights, policy: Policy) -> Evaluation:
    """Fit a challenger on the older days and judge it against `champion` on the holdout."""
    rows = len(data.outcome)
    present = ~np.isnan(data.features)
    coverage = {
        side: present[rows_of].mean(axis=0) if rows_of.any() else np.zeros(len(COMPONENTS))
        for side, rows_of in (("train", ~data.holdout), ("holdout", data.holdout))
    }
    # Measured on each side: a component that stopped arriving (present on most of the window
    # but on none of the held-out days) is no column. Where a champion's component is missing
    # it counts as 0 in the champion's predictions, as a missing average does in the score
    # (DESIGN §3): both models are still judged on the same held-out rows.
    columns = tuple(
        c
        for i, c in enumerate(COMPONENTS)
        if min(coverage["train"][i], coverage["holdout"][i]) >= MIN_COMPONENT_COVERAGE
    )
    index = [COMPONENTS.index(c) for c in columns]
    complete = present[:, index].all(axis=1) if rows else np.zeros(0, dtype=np.bool_)
    train, hold = complete & ~data.holdout, complete & data.holdout
    counts = {
        "train_rows": int(train.sum()),
        "holdout_rows": int(hold.sum()),
        "train_tenants": int(np.unique(data.tenant[train]).size),
        "holdout_tenants": int(np.unique(data.tenant[hold]).size),
    }
    details: dict[str, object] = {
        "coverage": {
            side: {c: round(float(shares[i]), 4) for i, c in enumerate(COMPONENTS)}
            for side, shares in coverage.items()
        },
        "dataSha256": data.checksum(),
        "policy": asdict(policy),
        # the fit is deterministic for given data and library versions
        "versions": {"numpy": np.__version__, "scipy": _scipy_version()},
    }

    base = Evaluation(
        decision="skipped",
        reason="",
        components=columns,
        dropped_rows=rows - int(complete.sum()),
        challenger=None,
        champion_metrics=None,
        challenger_metrics=None,
        details=details,
        **counts,
    )

    shortfalls = _shortfalls(counts, policy)
    if shortfalls:
        return replace(base, reason="too little data to train: " + "; ".join(shortfalls))

    # Unused components are zeroed: their weight is 0 in both models, NaN must not leak.
    features = np.where(present, data.features, 0.0)
    coefficients, raw_intercept = fit(features[train][:, index], data.outcome[train])
    details["raw"] = {
        **{c: float(w) for c, w in zip(columns, coefficients, strict=True)},
        "intercept": raw_intercept,
    }
    champion_metrics = measure(data.outcome[hold], predict(champion, features[hold]))
    if coefficients.sum() < ZERO_FIT:
        return replace(
            base,
            decision="rejected",
            reason="the fit gives every component zero weight: outcomes do not rise with any "
            "component",
            champion_metrics=champion_metrics,
        )
    challenger = normalise(coefficients, columns, features[train][:, index], data.outcome[train])
    challenger_metrics = measure(data.outcome[hold], predict(challenger, features[hold]))
    decision, reason = _judge(champion_metrics, challenger_metrics, policy)
    return replace(
        base,
        decision=decision,
        reason=reason,
        challenger=challenger,
        champion_metrics=champion_metrics,
        challenger_metrics=challenger_metrics,
    )


def _scipy_version() -> str:
    import scipy

    return str(scipy.__version__)
