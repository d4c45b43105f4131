"""Fit, evaluate and judge a challenger model: pure numpy/scipy, no database.

The model is linear in the five components, `outcome ≈ intercept + Σ weight·component`,
fitted with non-negative weights (SciPy's NNLS) on tenant-days before the holdout, then
normalised so the weights sum to 1 (the score stays on 0-100). Champion and challenger are
then judged on the same held-out tenant-days, with exactly the weights the score would use.

The rows never come here: the fit needs only their sufficient statistics (`Moments`, summed
where the rows are), and the judging only sums of errors (`Errors`), whatever the fleet's size.
"""

import asyncio
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Final, Literal, Protocol

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

# "held": better, but the champion is pinned by a rollback (scoring/model.py)
Decision = Literal["promoted", "rejected", "skipped", "held"]
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
class Moments:
    """Exact sums over a set of tenant-days (missing components as 0): all that a least-squares
    fit needs, however many rows they stand for (n, Σx, ΣxxT, Σxy, Σy, Σy² over COMPONENTS)."""

    rows: int
    x: tuple[Fraction, ...]
    xx: tuple[tuple[Fraction, ...], ...]
    xy: tuple[Fraction, ...]
    y: Fraction
    yy: Fraction

    @classmethod
    def zero(cls) -> "Moments":
        k, nothing = len(COMPONENTS), Fraction(0)
        return cls(0, (nothing,) * k, ((nothing,) * k,) * k, (nothing,) * k, nothing, nothing)

    def __add__(self, other: "Moments") -> "Moments":
        return Moments(
            self.rows + other.rows,
            tuple(a + b for a, b in zip(self.x, other.x, strict=True)),
            tuple(
                tuple(a + b for a, b in zip(row, other_row, strict=True))
                for row, other_row in zip(self.xx, other.xx, strict=True)
            ),
            tuple(a + b for a, b in zip(self.xy, other.xy, strict=True)),
            self.y + other.y,
            self.yy + other.yy,
        )


@dataclass(frozen=True, slots=True)
class Group:
    """The tenant-days of one side of the split that carry one pattern of components."""

    holdout: bool
    present: tuple[bool, ...]  # per COMPONENTS
    moments: Moments


@dataclass(frozen=True, slots=True)
class Summary:
    """A window's tenant-days with a known outcome, as at most 2 x 32 groups, and a checksum
    that lets a re-run prove it saw the same rows."""

    groups: tuple[Group, ...]
    checksum: str


@dataclass(frozen=True, slots=True)
class Errors:
    """Exact sums of a model's errors over held-out tenant-days (prediction clamped to 0-100,
    missing components as 0): n, Σe², Σ|e|, Σy, Σy²."""

    rows: int
    squared: Fraction
    absolute: Fraction
    y: Fraction
    yy: Fraction


class TrainingData(Protocol):
    """A window's tenant-days, reduced where they live (the database): a run never holds the
    rows themselves, only sums, so its memory and time in Python do not grow with the fleet."""

    async def summary(self) -> Summary: ...

    async def tenants(self, columns: tuple[str, ...]) -> tuple[int, int]:
        """Tenants with a row carrying every one of `columns`: on training days, held out."""
        ...

    async def holdout_errors(self, weights: Weights, columns: tuple[str, ...]) -> Errors:
        """`weights`' errors on the held-out rows that carry every one of `columns`."""
        ...


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


@dataclass(frozen=True, slots=True)
class Centred:
    """Means and centred cross-products of the training rows over the fit's columns."""

    x_mean: FloatArray
    y_mean: float
    xx: FloatArray  # Σ (x - x̄)(x - x̄)ᵀ
    xy: FloatArray  # Σ (x - x̄)(y - ȳ)

    @classmethod
    def of(cls, moments: Moments, index: list[int]) -> "Centred":
        """Computed exactly (fractions), then rounded once to floats: no cancellation."""
        n = moments.rows
        x = [moments.x[i] for i in index]
        xx = [[moments.xx[i][j] - moments.x[i] * moments.x[j] / n for j in index] for i in index]
        xy = [moments.xy[i] - moments.x[i] * moments.y / n for i in index]
        return cls(
            np.array([float(v / n) for v in x], dtype=np.float64).reshape(len(index)),
            float(moments.y / n),
            np.array([[float(v) for v in row] for row in xx], dtype=np.float64).reshape(
                len(index), len(index)
            ),
            np.array([float(v) for v in xy], dtype=np.float64).reshape(len(index)),
        )


def fit(centred: Centred) -> tuple[FloatArray, float]:
    """Least squares with non-negative weights and a free intercept (centred NNLS), from the
    normal equations: with C = XcᵀXc = AᵀA (A = Λ^½Vᵀ from C's eigendecomposition, rank
    deficiency allowed) and Aᵀb = Xcᵀyc, ‖Xc·w - yc‖² = ‖A·w - b‖² + a constant, so NNLS on
    (A, b) gives the weights NNLS on the rows would."""
    from scipy.optimize import nnls  # imported here: SciPy costs every CLI start ~0.3 s

    k = len(centred.xy)
    coefficients = np.zeros(k, dtype=np.float64)
    if k:
        eigenvalues, vectors = np.linalg.eigh(centred.xx)
        cutoff = max(float(eigenvalues.max()), 0.0) * k * np.finfo(np.float64).eps
        keep = eigenvalues > cutoff
        if keep.any():
            root = np.sqrt(eigenvalues[keep])
            a = root[:, None] * vectors[:, keep].T
            b = (vectors[:, keep].T @ centred.xy) / root
            solution, _ = nnls(a, b)
            coefficients = np.asarray(solution, dtype=np.float64)
    return coefficients, centred.y_mean - float(centred.x_mean @ coefficients)


def normalise(coefficients: FloatArray, columns: tuple[str, ...], centred: Centred) -> Weights:
    """Weights summing to exactly 1 at the stored precision, and the least-squares intercept
    that goes with them on the training rows (ȳ - x̄·w)."""
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
    intercept = Decimal(centred.y_mean - float(centred.x_mean @ vector)).quantize(INTERCEPT_PLACES)
    intercept = max(-INTERCEPT_BOUND, min(INTERCEPT_BOUND, intercept))
    return Weights(**weights, intercept=intercept)


def measure(errors: Errors) -> Metrics:
    """RMSE, MAE and R² from exact sums of errors."""
    if errors.rows == 0:
        return Metrics(0.0, 0.0, None)
    n = errors.rows
    total = errors.yy - errors.y * errors.y / n
    r2 = 1.0 - float(errors.squared / total) if total > 0 else None
    return Metrics(float(np.sqrt(float(errors.squared / n))), float(errors.absolute / n), r2)


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
        if counts[key] < max(need, 1)  # nothing to fit or judge on, whatever the settings
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


async def evaluate(data: TrainingData, champion: Weights, policy: Policy) -> Evaluation:
    """Fit a challenger on the older days and judge it against `champion` on the holdout."""
    summary = await data.summary()
    sides = {
        side: [g for g in summary.groups if g.holdout == (side == "holdout")]
        for side in ("train", "holdout")
    }
    coverage = {side: _coverage(groups) for side, groups in sides.items()}
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

    def complete(groups: list[Group]) -> Moments:
        return sum((g.moments for g in groups if all(g.present[i] for i in index)), Moments.zero())

    train, hold = complete(sides["train"]), complete(sides["holdout"])
    rows = sum(g.moments.rows for g in summary.groups)
    train_tenants, holdout_tenants = await data.tenants(columns)
    counts = {
        "train_rows": train.rows,
        "holdout_rows": hold.rows,
        "train_tenants": train_tenants,
        "holdout_tenants": holdout_tenants,
    }
    details: dict[str, object] = {
        "coverage": {
            side: {c: round(float(shares[i]), 4) for i, c in enumerate(COMPONENTS)}
            for side, shares in coverage.items()
        },
        "dataSha256": summary.checksum,
        "policy": asdict(policy),
        # the fit is deterministic for given data and library versions
        "versions": {"numpy": np.__version__, "scipy": _scipy_version()},
    }

    base = Evaluation(
        decision="skipped",
        reason="",
        components=columns,
        dropped_rows=rows - train.rows - hold.rows,
        challenger=None,
        champion_metrics=None,
        challenger_metrics=None,
        details=details,
        **counts,
    )

    shortfalls = _shortfalls(counts, policy)
    if shortfalls:
        return replace(base, reason="too little data to train: " + "; ".join(shortfalls))

    centred = Centred.of(train, index)
    # The first fit imports SciPy: off the event loop, like any CPU work.
    coefficients, raw_intercept = await asyncio.to_thread(fit, centred)
    details["raw"] = {
        **{c: float(w) for c, w in zip(columns, coefficients, strict=True)},
        "intercept": raw_intercept,
    }
    champion_metrics = measure(await data.holdout_errors(champion, columns))
    if coefficients.sum() < ZERO_FIT:
        return replace(
            base,
            decision="rejected",
            reason="the fit gives every component zero weight: outcomes do not rise with any "
            "component",
            champion_metrics=champion_metrics,
        )
    challenger = normalise(coefficients, columns, centred)
    challenger_metrics = measure(await data.holdout_errors(challenger, columns))
    decision, reason = _judge(champion_metrics, challenger_metrics, policy)
    return replace(
        base,
        decision=decision,
        reason=reason,
        challenger=challenger,
        champion_metrics=champion_metrics,
        challenger_metrics=challenger_metrics,
    )


def _coverage(groups: list[Group]) -> FloatArray:
    """The share of these tenant-days that carry each component."""
    rows = sum(g.moments.rows for g in groups)
    if not rows:
        return np.zeros(len(COMPONENTS))
    present = [sum(g.moments.rows for g in groups if g.present[i]) for i in range(len(COMPONENTS))]
    return np.array(present, dtype=np.float64) / rows


def _scipy_version() -> str:
    import scipy

    return str(scipy.__version__)
