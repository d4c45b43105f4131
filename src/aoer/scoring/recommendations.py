"""What to do about the score (DESIGN §13): documented rules over a dealership's own numbers.

Each rule (README, "Recommendations") has a trigger on the summary's metrics and a message that
carries the numbers. `expected_gain` is the change of the stored score (points, 2 decimals) the
advice would bring, recomputed exactly as the score is (DESIGN §3 with the summary's model
weights): L = intercept + Σ w·c, score = round(clamp(L · (1 - min(volatility/20, 0.30))), 2).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from aoer.types import JsonObject, Summary
from aoer.wording import plural

Severity = Literal["critical", "warning", "info"]

CENT = Decimal("0.01")
STALE_AFTER_DAYS = 7  # DESIGN §3: risk 0.60 past this
MIN_DATA_POINTS = 5  # DESIGN §3: risk 0.80 below this
HIGH_VOLATILITY = Decimal(15)  # DESIGN §3: risk 0.40 above this
WINDOW_DAYS = 30
PENALTY_DIVISOR = Decimal(20)
PENALTY_CAP = Decimal("0.30")
PENALTY_FREE_FROM = (PENALTY_CAP * PENALTY_DIVISOR).normalize()  # 6: capped from here up

# component id → (metrics key, label), in the order ties are broken
COMPONENTS: dict[str, tuple[str, str]] = {
    "aeo": ("avgAEO", "AEO"),
    "geo": ("avgGEO", "GEO"),
    "ugc": ("avgUGC", "UGC"),
    "seo": ("avgSEO", "SEO"),
    "geolocal": ("avgGeolocal", "Geolocal"),
}
V1_WEIGHTS: dict[str, Decimal] = {
    "seo": Decimal(0),
    "aeo": Decimal("0.40"),
    "geo": Decimal("0.35"),
    "ugc": Decimal("0.25"),
    "geolocal": Decimal(0),
}


@dataclass(frozen=True, slots=True)
class Recommendation:
    id: str
    severity: Severity
    message: str
    component: str | None = None
    expected_gain: Decimal | None = None

    def as_json(self) -> JsonObject:
        body: JsonObject = {"id": self.id, "severity": self.severity, "message": self.message}
        if self.component is not None:
            body["component"] = self.component
        if self.expected_gain is not None:
            body["expectedGain"] = self.expected_gain
        return body


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int | float | str):
        return Decimal(str(value))
    return None


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _percent(share: Decimal) -> str:
    return f"{(share * 100).normalize():f}%"


@dataclass(frozen=True, slots=True)
class _Terms:
    """The summary's score as its parts: what a what-if changes one of."""

    weights: dict[str, Decimal]
    intercept: Decimal
    components: dict[str, Decimal]
    volatility: Decimal

    def score(self, components: dict[str, Decimal], volatility: Decimal) -> Decimal:
        linear = self.intercept + sum(
            (w * components.get(c, Decimal(0)) for c, w in self.weights.items()), Decimal(0)
        )
        multiplier = 1 - min(volatility / PENALTY_DIVISOR, PENALTY_CAP)
        return _cents(max(Decimal(0), min(Decimal(100), linear * multiplier)))


def _terms(summary: Summary) -> _Terms | None:
    metrics = summary.metrics
    volatility = _decimal(metrics.get("volatility"))
    if volatility is None:
        return None
    found = summary.weights or {}
    weights = {c: _decimal(found.get(c)) for c in COMPONENTS}
    if any(w is None for w in weights.values()):  # model unknown: v1 (DESIGN §3)
        exact, intercept = dict(V1_WEIGHTS), Decimal(0)
    else:
        exact = {c: w for c, w in weights.items() if w is not None}
        intercept = _decimal(found.get("intercept")) or Decimal(0)
    components = {}
    for c, (key, _label) in COMPONENTS.items():
        value = _decimal(metrics.get(key))
        if value is not None:
            components[c] = value
    return _Terms(exact, intercept, components, volatility)


def recommend(summary: Summary) -> list[Recommendation]:
    """The rules that fire for this summary, most severe first."""
    metrics = summary.metrics
    points = metrics.get("dataPoints")
    days = metrics.get("daysSinceLastData")
    if "avgAEO" not in metrics:
        return [
            Recommendation(
                "no_data",
                "critical",
                f"No signal with an AEO value in the last {WINDOW_DAYS} days: the score stays "
                f"{summary.aoer_score} and visibility risk {summary.visibility_risk} until "
                "signals arrive.",
            )
        ]
    found: list[Recommendation] = []
    if isinstance(days, int) and days > STALE_AFTER_DAYS:
        found.append(_stale(days))
    if isinstance(points, int) and points < MIN_DATA_POINTS:
        found.append(_few_points(points))
    terms = _terms(summary)
    if terms is not None:
        if terms.volatility > HIGH_VOLATILITY:
            found.append(_volatile(summary, terms))
        weakest = _weakest(summary, terms)
        if weakest is not None:
            found.append(weakest)
    order = {"critical": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda r: order[r.severity])


def _stale(days: int) -> Recommendation:
    empty_in = WINDOW_DAYS + 1 - days
    return Recommendation(
        "stale_data",
        "warning",
        f"The latest signal is {plural(days, 'day')} old (over {STALE_AFTER_DAYS}): visibility "
        "risk stays at 0.60 (High) or above until new signals arrive, and without them the "
        f"score falls to 0.00 in {plural(empty_in, 'day')} as the {WINDOW_DAYS}-day window "
        "empties.",
    )


def _few_points(points: int) -> Recommendation:
    missing = MIN_DATA_POINTS - points
    return Recommendation(
        "few_data_points",
        "warning",
        f"Only {plural(points, 'data point')} in the last {WINDOW_DAYS} days: "
        f"signals on {plural(missing, 'more day')} would reach {MIN_DATA_POINTS} and "
        "leave High risk (0.80).",
    )


def _benchmark_label(benchmark: JsonObject) -> str:
    scope = "organisation" if benchmark.get("scope") == "organisation" else "fleet"
    tenants = benchmark.get("tenants")
    return f"{scope} median" + (
        f" ({plural(tenants, 'dealership')})" if isinstance(tenants, int) else ""
    )


def _volatile(summary: Summary, terms: _Terms) -> Recommendation:
    """Volatility over 15 costs risk at once, but points only below 6: the penalty is capped
    at 30 % from volatility 6 up, so "the gain at 15" is always nothing. The gain given is a
    steady AEO's (volatility 0): the most that calming AEO can add."""
    current = summary.aoer_score
    steady = terms.score(terms.components, Decimal(0)) - current
    message = (
        f"AEO volatility is {terms.volatility} (over {HIGH_VOLATILITY}): it keeps visibility "
        f"risk at 0.40 (Medium) or above and takes "
        f"{_percent(min(terms.volatility / PENALTY_DIVISOR, PENALTY_CAP))} off the score. "
        f"Below {HIGH_VOLATILITY} the risk can fall to 0.20 (Low); the penalty shrinks only "
        f"below {PENALTY_FREE_FROM}, and a steady AEO (volatility 0) would gain {steady} points"
    )
    benchmark = summary.benchmark or {}
    median = _decimal(benchmark.get("volatility"))
    if median is not None and median < terms.volatility:
        at_median = terms.score(terms.components, median) - current
        message += f"; at the {_benchmark_label(benchmark)} of {median}, {at_median} points"
    return Recommendation("high_volatility", "warning", message + ".", expected_gain=steady)


def _weakest(summary: Summary, terms: _Terms) -> Recommendation | None:
    """The weighted component whose reaching the benchmark median adds the most points."""
    benchmark = summary.benchmark
    if not benchmark:
        return None
    best: tuple[Decimal, str, Decimal, Decimal] | None = None
    for c, (key, _label) in COMPONENTS.items():
        value, median = terms.components.get(c), _decimal(benchmark.get(key))
        if terms.weights.get(c, Decimal(0)) <= 0 or value is None or median is None:
            continue
        if value >= median:
            continue
        gain = terms.score({**terms.components, c: median}, terms.volatility) - summary.aoer_score
        if gain > 0 and (best is None or gain > best[0]):
            best = (gain, c, value, median)
    if best is None:
        return None
    gain, c, value, median = best
    label = COMPONENTS[c][1]
    return Recommendation(
        "weakest_component",
        "info",
        f"{label} is the component furthest behind: {value} against the "
        f"{_benchmark_label(benchmark)} of {median}. Reaching it would add {gain} points "
        f"(score {summary.aoer_score} → {summary.aoer_score + gain}).",
        component=c,
        expected_gain=gain,
    )
