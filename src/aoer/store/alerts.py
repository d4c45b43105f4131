"""Alert rules, webhook endpoints, alerts and their deliveries (DESIGN §13).

`raise_for_batch` runs inside a worker's batch transaction, so an alert commits with the
recompute (or failure) that caused it or not at all. Deliveries are claimed under a lease
by `claim_deliveries` and settled one by one by `settle_delivery`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit
from uuid import UUID

from psycopg.types.json import Jsonb

from aoer.store.statements import Statements
from aoer.types import CompletedJob, Page

ALERT_FEED_MAX = 500
ALERT_MARKERS_LIMIT: Final = 200  # alert markers per trend chart, the newest


@dataclass(frozen=True, slots=True)
class RaisedAlerts:
    alerts: int
    deliveries: int
    notifications: int


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: UUID
    org_id: UUID | None
    url: str
    secret: str
    active: bool
    created_at: datetime
    created_by: str

    @property
    def host(self) -> str:
        """Where it sends, as a delivery line names it (`hooks.example.com`)."""
        return urlsplit(self.url).hostname or self.url


def hosts_by_id(endpoints: Sequence[Endpoint]) -> dict[str, str]:
    """Endpoint id (as a delivery's JSON names it) → host."""
    return {str(e.id): e.host for e in endpoints}


@dataclass(frozen=True, slots=True)
class Rule:
    id: UUID
    scope: str
    org_id: UUID | None
    tenant_id: UUID | None
    kind: str
    params: dict[str, Any]
    endpoint_ids: list[UUID]
    emails: list[str]
    active: bool
    created_at: datetime
    created_by: str
    owner_org: UUID | None = None  # the organisation that made it (0034); None: an admin


@dataclass(frozen=True, slots=True)
class NewRule:
    scope: str
    org_id: UUID | None
    tenant_id: UUID | None
    kind: str
    params: dict[str, Any]
    endpoint_ids: list[UUID]
    emails: list[str]
    created_by: str
    owner_org: UUID | None = None  # the organisation that made it (0034); None: an admin


@dataclass(frozen=True, slots=True)
class Alert:
    id: UUID
    rule_id: UUID | None
    kind: str
    tenant_id: UUID
    created_at: datetime
    data: dict[str, Any]
    deliveries: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class MarkedAlert:
    """An alert as the score trend marks it: what, when, and its data (no deliveries)."""

    id: UUID
    kind: str
    created_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """One delivery attempt in hand: where to (an endpoint or an address) and what."""

    id: UUID
    alert_id: UUID
    endpoint_id: UUID | None
    email: str | None
    attempts: int
    created_at: datetime
    url: str | None
    secret: str | None
    endpoint_org_id: UUID | None  # an organisation's endpoint: public addresses only
    kind: str
    data: dict[str, Any]
    alert_created_at: datetime


@dataclass(frozen=True, slots=True)
class DeletedEndpoint:
    id: UUID
    org_id: UUID | None
    url: str
    cancelled: int


@dataclass(frozen=True, slots=True)
class TenantOrgRow:
    id: UUID
    org_id: UUID | None


class Alerts(Statements):
    # -- raising (inside the batch's transaction) --------------------------------------------

    async def armed(self) -> bool:
        """Whether any alert rule is active (else a batch has nothing to raise)."""
        return bool(await self._value("alerts_armed"))

    async def raise_for_batch(
        self, completed: Sequence[CompletedJob], failed_job_ids: Sequence[UUID]
    ) -> RaisedAlerts:
        """Alerts for the transitions of these completed recomputes (each with the summary it
        replaced) and for these jobs that ended `failed`, with their pending deliveries: one
        statement."""
        params = {
            "job_ids": [j.id for j in completed],
            "tenant_ids": [j.tenant_id for j in completed],
            "cur_scores": [j.aoer_score for j in completed],
            "cur_risks": [j.visibility_risk for j in completed],
            "cur_days": [j.days_since_last_data for j in completed],
            "prev_scores": [j.previous_score for j in completed],
            "prev_risks": [j.previous_risk for j in completed],
            "failed_job_ids": list(failed_job_ids),
        }
        row = await self._one(RaisedAlerts, "raise_alerts", params)
        return row or RaisedAlerts(0, 0, 0)

    # -- delivery ----------------------------------------------------------------------------

    async def claim_deliveries(
        self, worker_id: str, limit: int, lease_s: float
    ) -> list[ClaimedDelivery]:
        params = {"worker_id": worker_id, "limit": limit, "lease_s": lease_s}
        async with self.transaction():
            return await self._all(ClaimedDelivery, "claim_deliveries", params)

    async def settle_delivery(
        self,
        worker_id: str,
        delivery_id: UUID,
        *,
        ok: bool,
        status_code: int | None,
        error: str | None,
        delay_s: float,
        window_s: float,
        give_up: bool = False,
    ) -> str | None:
        """Record an attempt's outcome; the delivery's new status (None: no longer ours)."""
        params = {
            "id": delivery_id,
            "worker_id": worker_id,
            "ok": ok,
            "status_code": status_code,
            "error": error,
            "delay_s": delay_s,
            "window_s": window_s,
            "give_up": give_up,
        }
        value = await self._value("settle_delivery", params)
        return None if value is None else str(value)

    async def next_delivery_due(self) -> datetime | None:
        value = await self._value("next_delivery_due")
        return value if isinstance(value, datetime) else None

    # -- endpoints ---------------------------------------------------------------------------

    async def create_endpoint(
        self, *, org_id: UUID | None, url: str, secret: str, created_by: str
    ) -> Endpoint:
        params = {"org_id": org_id, "url": url, "secret": secret, "created_by": created_by}
        row = await self._one(Endpoint, "create_endpoint", params)
        assert row is not None
        return row

    async def endpoints(self, org_id: UUID | None = None) -> list[Endpoint]:
        return await self._all(Endpoint, "list_endpoints", {"org_id": org_id})

    async def endpoints_by_id(self, ids: Sequence[UUID]) -> list[Endpoint]:
        return await self._all(Endpoint, "get_endpoints", {"ids": list(ids)})

    async def delete_endpoint(self, endpoint_id: UUID) -> DeletedEndpoint | None:
        """Remove a visible endpoint: its pending deliveries end `failed` and rules stop
        naming it, in one transaction. None when there is no such (visible) endpoint."""
        async with self.transaction():
            found = await self.endpoints_by_id([endpoint_id])
            if not found:
                return None
            cancelled = await self._int("detach_endpoint", {"id": endpoint_id})
            await self._run("delete_endpoint", {"id": endpoint_id})
        return DeletedEndpoint(found[0].id, found[0].org_id, found[0].url, cancelled)

    # -- rules -------------------------------------------------------------------------------

    async def create_rule(self, rule: NewRule) -> Rule:
        params = {
            "scope": rule.scope,
            "org_id": rule.org_id,
            "tenant_id": rule.tenant_id,
            "kind": rule.kind,
            "params": Jsonb(rule.params),
            "endpoint_ids": list(rule.endpoint_ids),
            "emails": list(rule.emails),
            "created_by": rule.created_by,
            "owner_org": rule.owner_org,
        }
        row = await self._one(Rule, "create_rule", params)
        assert row is not None
        return row

    async def lock_rule_watch(self, tenant_id: UUID | None, org_id: UUID | None, kind: str) -> None:
        """Serialise rule changes for this watch until the transaction ends."""
        await self._run("lock_rule_watch", {"watch": f"{tenant_id}:{org_id}:{kind}"})

    async def rules(
        self, *, org_id: UUID | None = None, tenant_id: UUID | None = None
    ) -> list[Rule]:
        return await self._all(Rule, "list_rules", {"org_id": org_id, "tenant_id": tenant_id})

    async def delete_rule(self, rule_id: UUID) -> Rule | None:
        return await self._one(Rule, "delete_rule", {"id": rule_id})

    # -- the feed ----------------------------------------------------------------------------

    async def feed(
        self,
        *,
        tenant_id: UUID | None = None,
        org_id: UUID | None = None,
        since: datetime | None = None,
        before: tuple[datetime, UUID] | None = None,
        limit: int = 100,
    ) -> Page[Alert]:
        """Visible alerts, newest first, each with its deliveries, and whether more follow;
        `before`: after the alert with that (created_at, id), the last of the previous page."""
        limit = max(1, min(limit, ALERT_FEED_MAX))
        params = {
            "tenant_id": tenant_id,
            "org_id": org_id,
            "since": since,
            "before_at": before[0] if before else None,
            "before_id": before[1] if before else None,
            "limit": limit + 1,
        }
        return Page.of(await self._all(Alert, "list_alerts", params), limit)

    async def by_ids(self, ids: Sequence[UUID]) -> list[Alert]:
        """These alerts (those visible), newest first, each with its deliveries."""
        return await self._all(Alert, "alerts_by_ids", {"ids": list(ids)})

    async def on_trend(self, tenant_id: UUID, days: int) -> list[MarkedAlert]:
        """The tenant's alerts of the last `days` days to mark on its score trend, oldest
        first: the newest ALERT_MARKERS_LIMIT of them, so a noisy rule cannot flood the chart."""
        params = {"tenant_id": tenant_id, "days": days, "limit": ALERT_MARKERS_LIMIT}
        rows = await self._all(MarkedAlert, "alert_markers", params)
        return rows[::-1]

    async def delete_old(self, days: int, limit: int) -> int:
        """Retention: one batch of alerts older than `days` with no pending delivery."""
        return await self._run("delete_old_alerts", {"days": days, "limit": limit})

    async def tenant(self, tenant_id: UUID) -> TenantOrgRow | None:
        """The tenant (if visible) and its organisation."""
        return await self._one(TenantOrgRow, "tenant_org_of", {"tenant_id": tenant_id})
