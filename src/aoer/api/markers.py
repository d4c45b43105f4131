"""Markers on a dealership's score trend (DESIGN §13): what happened besides the score.

One place gathers them for `GET /api/aoer/history` (and so for the dashboard's chart, which
draws each kind with its own style, class `marker-<kind>`): model promotions and rollbacks
(`kind` model) and the tenant's alerts (`kind` alert, worded as the alert feed words them).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from aoer.alerts.wording import sentence, title
from aoer.store import Session

MarkerKind = Literal["model", "alert"]


@dataclass(frozen=True, slots=True)
class Marker:
    at: datetime
    kind: MarkerKind
    label: str  # short, drawn on the chart
    detail: str  # a sentence, for the tooltip and screen readers


async def trend_markers(session: Session, tenant_id: UUID, days: int) -> list[Marker]:
    """The markers of the tenant's last `days` days, oldest first. Model changes apply to
    every tenant (the champion is global) recomputed before them: a dealership first scored
    after a promotion was never scored with the model it replaced. Alerts are the tenant's
    own (the session's Row Level Security applies too), the newest ones when there are many."""
    markers = []
    for change in await session.models.changes(days):
        if not await session.scores.recomputed_before(tenant_id, change.created_at):
            continue
        if change.decision == "promoted":
            label = f"{change.result_version} promoted"
            detail = (
                f"Model {change.result_version} replaced {change.champion_version}: "
                "every score was recomputed with its weights"
            )
        else:
            label = f"rollback to {change.result_version}"
            detail = (
                f"Model {change.champion_version} was rolled back to {change.result_version}: "
                "every score was recomputed with its weights"
            )
        markers.append(Marker(change.created_at, "model", label, detail))
    for alert in await session.alerts.on_trend(tenant_id, days):
        markers.append(
            Marker(alert.created_at, "alert", title(alert.kind), sentence(alert.kind, alert.data))
        )
    return sorted(markers, key=lambda m: m.at)
