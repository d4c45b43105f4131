"""Alerts in words (the trend chart's alert markers, e-mail): the feed's titles and numbers."""

import pytest

from aoer.alerts.wording import sentence, summary, title
from aoer.constants import ALERT_KINDS

PREVIOUS = {"aoerScore": 62.1, "visibilityRisk": 0.2, "grade": "Good", "riskLevel": "Low"}
CURRENT = {"aoerScore": 55, "visibilityRisk": 0.71, "grade": "Fair", "riskLevel": "High"}


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "risk_level_up",
            {"previous": PREVIOUS, "current": CURRENT},
            "Visibility risk rose: risk 0.20 (Low) → 0.71 (High)",
        ),
        (
            "grade_down",
            {"previous": PREVIOUS, "current": CURRENT},
            "Grade fell: score 62.10 (Good) → 55.00 (Fair)",
        ),
        (
            "score_drop",
            {"current": CURRENT, "reference": {"aoerScore": 70, "days": 7}, "drop": 15},
            "Score dropped: score 55.00, 15.00 below 7 days ago",
        ),
        (
            "stale_data",
            {"current": {"daysSinceLastData": 9}},
            "No recent data: 9 days since the last data",
        ),
        (
            "stale_data",
            {"current": {"daysSinceLastData": 1}},
            "No recent data: 1 day since the last data",
        ),
        ("stale_data", {"current": {}}, "No recent data: no data in the score's window"),
        (
            "score_drop",
            {"current": CURRENT, "reference": {"aoerScore": 58, "days": 1}, "drop": 3},
            "Score dropped: score 55.00, 3.00 below 1 day ago",
        ),
        ("job_failed", {"job": {"error": "boom"}}, "Recompute failed: boom"),
        ("job_failed", {}, "Recompute failed: the job ran out of attempts"),
    ],
)
def test_an_alert_reads_as_the_feed_words_it(
    kind: str, data: dict[str, object], expected: str
) -> None:
    assert sentence(kind, data) == expected


def test_every_kind_has_a_title_and_an_unknown_kind_is_named_as_is() -> None:
    assert all(title(kind) != kind for kind in ALERT_KINDS)
    assert title("new_kind") == "new_kind"
    assert summary("new_kind", {}) == ""
    assert sentence("new_kind", {}) == "new_kind"
