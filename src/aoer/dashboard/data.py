"""What the dashboard shows, gathered from the store into one typed view per page."""

import contextlib
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Final, get_args
from uuid import UUID

from aoer.alerts import manage
from aoer.store import Session
from aoer.store.alerts import Alert, Endpoint, Rule, hosts_by_id
from aoer.store.fleet import (
    ASCENDING_FIRST,
    NEVER_COMPUTED,
    SORT_KEYS,
    Failure,
    FleetFilter,
    FleetPage,
    FleetRow,
    FleetTotals,
    SortKey,
    TenantRow,
    sorted_descending,
)
from aoer.store.observations import EngineReport
from aoer.store.organizations import Organization
from aoer.store.scores import RecentEvent
from aoer.types import (
    Grade,
    QueueDepth,
    QueueStatus,
    RiskLevel,
    Tenant,
    Throughput,
    Tick,
)

GRADES: Final[tuple[str, ...]] = get_args(Grade)
RISK_LEVELS: Final[tuple[str, ...]] = get_args(RiskLevel)
RECENT_EVENTS: Final = 10
RECENT_FAILURES: Final = 10
ENGINE_LABELS: Final = {
    "chatgpt": "ChatGPT",
    "perplexity": "Perplexity",
    "gemini": "Gemini",
    "ai_overviews": "AI Overviews",
    "copilot": "Copilot",
    "claude": "Claude",
}
VOICE_RIVALS: Final = 5  # competitors beside the dealership in the share-of-voice chart

__all__ = [
    "ASCENDING_FIRST",
    "ENGINE_LABELS",
    "GRADES",
    "NEVER_COMPUTED",
    "RISK_LEVELS",
    "SORT_KEYS",
    "AlertsView",
    "EngineReport",
    "Failure",
    "FleetFilter",
    "FleetPage",
    "FleetRow",
    "FleetStats",
    "FleetTotals",
    "RecentEvent",
    "SortKey",
    "TenantView",
    "VoiceBar",
    "alerts_view",
    "engine_label",
    "engine_report",
    "fleet_page",
    "fleet_stats",
    "share_of_voice",
    "sorted_descending",
    "tenant_view",
    "voice_bars",
]

ALERT_KIND_LABELS: Final = {
    "risk_level_up": "Visibility risk rises",
    "grade_down": "Grade falls",
    "score_drop": "Score drops",
    "stale_data": "Data goes stale",
    "job_failed": "Recompute fails",
}
TENANT_CHOICES: Final = 500  # dealerships offered in the rule form's list (any id may be typed)
RECENT_ALERTS: Final = 30


@dataclass(frozen=True, slots=True)
class FleetStats:
    totals: FleetTotals
    depth: list[QueueDepth]
    throughput: Throughput
    failures: list[Failure]
    last_tick: Tick | None


@dataclass(frozen=True, slots=True)
class TenantView(TenantRow):
    """A dealership's row with its queue status and latest recomputes."""

    queue_status: QueueStatus
    events: list[RecentEvent]

    @property
    def computed(self) -> bool:
        return self.aoer_score is not None


async def fleet_page(session: Session, f: FleetFilter) -> FleetPage:
    """One sorted, filtered page of dealerships and how many match in all."""
    return await session.fleet.page(f)


async def fleet_stats(
    session: Session, tick_name: str | None, org_id: UUID | None = None
) -> FleetStats:
    """Totals (over one organisation's dealerships with `org_id`), queue depth, throughput,
    recent failures and the last scheduler tick (`tick_name` None: not read; an
    organisation's session may not read the scheduler's table)."""
    return FleetStats(
        totals=await session.fleet.totals(org_id),
        depth=await session.jobs.depth(),
        throughput=await session.jobs.throughput(),
        failures=await session.fleet.recent_failures(RECENT_FAILURES),
        last_tick=await session.ticks.last(tick_name) if tick_name else None,
    )


async def tenant_view(session: Session, tenant_id: UUID) -> TenantView | None:
    """One dealership's page data, or None when no such dealership is visible."""
    row = await session.fleet.tenant(tenant_id)
    if row is None:
        return None
    statuses = await session.jobs.statuses([tenant_id])
    return TenantView(
        **{f.name: getattr(row, f.name) for f in fields(row)},
        queue_status=statuses.get(tenant_id, QueueStatus(0, 0, 0, 0)),
        events=await session.scores.recent_events(tenant_id, RECENT_EVENTS),
    )


async def engine_report(session: Session, tenant_id: UUID) -> EngineReport:
    """The dealership's answer-engine metrics over the score's window (DESIGN §14)."""
    return await session.observations.report(tenant_id)


async def share_of_voice(session: Session, tenant_ids: list[UUID]) -> dict[UUID, Decimal | None]:
    """Each listed dealership's overall share of voice (absent: no observations)."""
    return await session.observations.share_of_voice(tenant_ids)


@dataclass(frozen=True, slots=True)
class VoiceBar:
    label: str
    share: Decimal  # 0-1
    own: bool


def voice_bars(report: EngineReport) -> list[VoiceBar]:
    """The dealership's share of voice, then its top five competitors' (those with one)."""
    bars = []
    if report.overall.share_of_voice is not None:
        bars.append(VoiceBar("You", report.overall.share_of_voice, own=True))
    bars += [
        VoiceBar(c.name, c.share_of_voice, own=False)
        for c in report.competitors[:VOICE_RIVALS]
        if c.share_of_voice is not None
    ]
    return bars


def engine_label(engine: str) -> str:
    """An engine's display name (its stored name when it is not a known one)."""
    return ENGINE_LABELS.get(engine, engine)


@dataclass(frozen=True, slots=True)
class AlertsView:
    rules: list[Rule]
    endpoints: list[Endpoint]
    tenants: list[Tenant]
    orgs: list[Organization]
    recent: list[Alert]
    # Dealerships of recent alerts that are no longer the viewing organisation's: it keeps
    # the alerts its rules raised for them (migration 0036) but cannot open their pages.
    departed: frozenset[UUID] = frozenset()
    # Rule id → its maker as this viewer may read it (`rule_makers`).
    makers: dict[UUID, str] = field(default_factory=dict)

    @property
    def tenant_names(self) -> dict[UUID, str]:
        return {t.id: t.name for t in self.tenants}

    @property
    def org_names(self) -> dict[UUID, str]:
        return {o.id: o.name for o in self.orgs}

    @property
    def endpoint_hosts(self) -> dict[str, str]:
        """A delivery's endpoint (its id, as the feed's deliveries hold it) → its host."""
        return hosts_by_id(self.endpoints)


async def alerts_view(
    session: Session, *, can_manage: bool, viewer_role: str, org_id: UUID | None = None
) -> AlertsView:
    """The alerts page: what this caller's session (its Row Level Security) lets it see;
    `org_id`: the viewing organisation's."""
    recent = (await session.alerts.feed(limit=RECENT_ALERTS)).rows
    departed: frozenset[UUID] = frozenset()
    if org_id is not None and recent:
        ids = {a.tenant_id for a in recent}
        orgs = await session.tenants.orgs_of(list(ids))
        departed = frozenset(t for t in ids if orgs.get(t) != org_id)
    rules = await session.alerts.rules()
    return AlertsView(
        rules=rules,
        endpoints=await session.alerts.endpoints() if can_manage else [],
        tenants=await session.tenants.list(limit=TENANT_CHOICES),
        orgs=await session.organizations.all(),
        recent=recent,
        departed=departed,
        makers=await rule_makers(session, rules, viewer_role),
    )


async def rule_makers(session: Session, rules: list[Rule], viewer_role: str) -> dict[UUID, str]:
    """Rule id → who made it, as this viewer may read it (`manage.maker_seen_by`) and as
    people know them: an API key by its name (`key:<id>` read as a random string), an
    administrator's rule to anyone else as "an administrator"."""
    seen = {r.id: manage.maker_seen_by(r, viewer_role) for r in rules}
    keys = {}
    for maker in set(seen.values()):
        if maker.startswith("key:"):
            with contextlib.suppress(ValueError):  # an actor written by hand
                keys[UUID(maker.removeprefix("key:"))] = maker
    named = await session.keys.names_of(list(keys))
    words = {keys[key_id]: f"key “{name}”" for key_id, name in named.items()}
    words[manage.ADMIN_MAKER] = "an administrator"
    return {rule_id: words.get(maker, maker) for rule_id, maker in seen.items()}
