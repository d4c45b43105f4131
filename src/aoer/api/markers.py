"""Markers on a dealership's score trend (DESIGN §13): what happened besides the score.

One place gathers them for `GET /api/aoer/history` (and so for the dashboard's chart, which
draws each kind with its own style). Today: model promotions and rollbacks. Alerts join here:
read the tenant's alerts over the same days and append `Marker(at, "alert", label, detail)`;
the chart already draws `kind == "alert"` (class `marker-alert`).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

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
    every tenant (the champion is global), so `tenant_id` only matters to tenant-owned kinds."""
    markers = []
    for change in await session.models.changes(days):
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
    # alerts (DESIGN §13): markers.extend(...) for this tenant, kind "alert"
    return sorted(markers, key=lambda m: m.at)
