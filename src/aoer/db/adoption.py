"""Adopting the old Node/Supabase system's database in place (DESIGN §17).

A database where the old system's migration ran holds its tables (`aoer_summary`,
`metrics_events`, `aoer_queue`, `aoer_failures`, and the signals in `aiv_raw_signals`), its
views and functions, and Row Level Security policies written against Supabase's `auth.jwt()`,
but no `aoer_schema_migrations`. `aoer migrate` adopts it inside its one transaction:

1. lock the old tables against writes (`hold`: a script still writing waits, or its open
   transaction is waited for, so the rows checked are the rows copied), then check every old
   row against this schema's rules; any offender stops everything before a change, naming
   the rows (`AdoptionRefused`);
2. drop the old views, functions and triggers, and set the old tables aside in schema
   `aoer_adoption` (their indexes, constraints and policies go with them);
3. apply migration 0001 as on an empty database, then copy every row across (`copy_rows`):
   a tenant per tenant id found, duplicate waiting jobs coalesced, leases for jobs in flight;
4. apply the remaining migrations (RLS, the functions of 0013, ...) as usual, carry other
   roles' grants and publications over, and drop the set-aside tables.

So an adopted schema is, by construction, the schema a fresh `aoer migrate` builds: the same
DDL made it. Running `aoer migrate` again finds `aoer_schema_migrations` and adopts nothing.
"""

import logging
from dataclasses import dataclass
from typing import LiteralString

from psycopg import sql

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.errors import MigrationError
from aoer.wording import plural

logger = logging.getLogger(__name__)

SIGNALS = "aiv_raw_signals"
# The old migration's tables and their columns (DESIGN §2, the old deployment guide).
OLD_COLUMNS: dict[str, frozenset[str]] = {
    SIGNALS: frozenset(
        ("dealer_id", "date", "seo", "aeo", "geo", "ugc", "geolocal", "observed_aiv",
         "observed_rar", "created_at", "updated_at")
    ),
    "aoer_summary": frozenset(
        ("id", "tenant_id", "aoer_score", "visibility_risk", "last_updated", "metrics",
         "created_at", "updated_at")
    ),
    "metrics_events": frozenset(("id", "tenant_id", "event_type", "event_data", "created_at")),
    "aoer_queue": frozenset(
        ("id", "tenant_id", "priority", "status", "retry_count", "max_retries", "scheduled_at",
         "started_at", "completed_at", "error_message", "created_at", "updated_at")
    ),
    "aoer_failures": frozenset(
        ("id", "tenant_id", "error_message", "error_data", "retry_count", "created_at")
    ),
}  # fmt: skip
OLD_TABLES = tuple(OLD_COLUMNS)
REQUIRED_TABLES = tuple(t for t in OLD_TABLES if t != SIGNALS)  # one migration made these
OLD_VIEWS = ("v_aoer_dashboard", "v_aoer_queue_status")
OLD_FUNCTIONS = (
    "compute_aoer_for_tenant",
    "update_aoer_summary",
    "queue_tenant_recompute",
    "get_aoer_queue_status",
)
ASIDE_SCHEMA = "aoer_adoption"
ROWS_NAMED = 10  # offending rows named per problem; the count says how many there are

# (query, the rows it finds, what is wrong with them), checked in this order.
_ROW_CHECKS: tuple[tuple[LiteralString, str, str], ...] = (
    ("adoption_bad_queue_priority", "aoer_queue row", "with a priority other than "
     "low, medium, high or urgent"),
    ("adoption_bad_queue_status", "aoer_queue row", "with a status other than "
     "queued, processing, completed or failed"),
    ("adoption_bad_queue_retries", "aoer_queue row", "with a negative retry_count or a "
     "max_retries below 1"),
    ("adoption_bad_summary_score", "aoer_summary row", "with an aoer_score outside 0-100"),
    ("adoption_bad_summary_risk", "aoer_summary row", "with a visibility_risk outside 0-1"),
    ("adoption_null_tenant", "row", "without a tenant or an event type"),
)  # fmt: skip
_SIGNAL_CHECK: tuple[LiteralString, str, str] = (
    "adoption_bad_signals",
    "aiv_raw_signals row",
    "(dealer_id date) with a missing key, a value outside its range (0-100; observed_rar "
    ">= 0) or a day sent twice",
)


class AdoptionRefused(MigrationError):
    """The old system's database holds what this schema refuses; nothing was changed."""


@dataclass(frozen=True)
class OldDatabase:
    """An old system's database about to be adopted: which of its tables exist."""

    tables: tuple[str, ...]

    @property
    def has_signals(self) -> bool:
        return SIGNALS in self.tables


async def _rows(
    conn: Connection, query_name: LiteralString, **params: object
) -> list[dict[str, object]]:
    cur = await conn.execute(query(query_name), params or None)
    return [dict(row) for row in await cur.fetchall()]


async def detect(conn: Connection) -> OldDatabase | None:
    """The old system's tables, when this database was never migrated by `aoer migrate` but
    holds any of them; None otherwise."""
    [found] = await _rows(conn, "adoption_relation_exists", name="aoer_schema_migrations")
    if found["found"]:
        return None
    present = await _rows(conn, "adoption_tables_present", tables=list(OLD_TABLES))
    tables = tuple(str(row["name"]) for row in present)
    return OldDatabase(tables) if tables else None


async def problems(conn: Connection, old: OldDatabase) -> list[str]:
    """Everything that stops the adoption, each naming what to fix; empty when none."""
    found: list[str] = []
    missing = [t for t in REQUIRED_TABLES if t not in old.tables]
    if missing:
        found.append(
            f"the old system's migration made {', '.join(REQUIRED_TABLES)} together, but "
            f"{', '.join(missing)} is missing: not a database this command can adopt"
        )
    columns: dict[str, set[str]] = {}
    for row in await _rows(conn, "adoption_columns", tables=list(old.tables)):
        columns.setdefault(str(row["table"]), set()).add(str(row["column"]))
    for table in old.tables:
        extra = sorted(columns.get(table, set()) - OLD_COLUMNS[table])
        lacking = sorted(OLD_COLUMNS[table] - columns.get(table, set()))
        if extra:
            found.append(
                f"{table} has columns this schema would not keep: {', '.join(extra)} "
                "(copy their data elsewhere and drop them first)"
            )
        if lacking:
            found.append(f"{table} lacks the old migration's columns {', '.join(lacking)}")
    [tenants] = await _rows(conn, "adoption_relation_exists", name="tenants")
    if tenants["found"]:
        found.append("a relation named tenants already exists; this schema creates its own")
    [aside] = await _rows(conn, "adoption_schema_exists", name=ASIDE_SCHEMA)
    if aside["found"]:
        found.append(f"a schema named {ASIDE_SCHEMA} exists; the adoption needs the name")
    dependents = await _rows(
        conn, "adoption_dependents", tables=list(old.tables), views=list(OLD_VIEWS)
    )
    for row in dependents:
        found.append(f"{row['name']} ({row['kind']}) uses the old tables; drop it first")
    if found:  # the row checks below read the columns named above
        return found
    checks = [*_ROW_CHECKS, _SIGNAL_CHECK] if old.has_signals else list(_ROW_CHECKS)
    for name, noun, what in checks:
        rows = await _rows(conn, name, limit=ROWS_NAMED)
        if rows:
            total = int(str(rows[0]["total"]))
            named = "".join(f"\n      {row['row']} ({row['value']})" for row in rows)
            more = f" (the first {len(rows)} of {total})" if total > len(rows) else ""
            found.append(f"{plural(total, noun)} {what}{more}: {named}")
    return found


async def hold(conn: Connection, old: OldDatabase) -> None:
    """Lock the old tables against writes until the adoption's transaction ends (reads go
    on). A row written after the checks, or in a transaction open while they ran, was copied
    unchecked: a bad priority then failed the copy with "null value in column priority"."""
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in old.tables)
    await conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(tables))


async def check(conn: Connection, old: OldDatabase) -> None:
    """Refuse (AdoptionRefused, every problem listed) unless everything can be adopted."""
    found = await problems(conn, old)
    if found:
        listed = "\n".join(f"  - {problem}" for problem in found)
        raise AdoptionRefused(
            f"cannot adopt the old system's database; nothing was changed. Fix these and run "
            f"`aoer migrate` again:\n{listed}"
        )


@dataclass(frozen=True)
class RetentionAges:
    """The workers' retention ages in days (AOER_RETAIN_JOBS_DAYS, _FAILURES_, _EVENTS_)."""

    jobs: int
    failures: int
    events: int


async def plan(
    conn: Connection, old: OldDatabase, retention: RetentionAges | None = None
) -> list[str]:
    """What the adoption will do, read without changing anything (after `check`); with
    `retention`, also what the workers' first daily retention will then delete of the old
    rows, which are all kept by the adoption itself."""
    [counts] = await _rows(conn, "adoption_counts")
    signals, extra_tenants = 0, 0
    if old.has_signals:
        [signal_counts] = await _rows(conn, "adoption_signal_counts")
        signals = int(str(signal_counts["signals"]))
        extra_tenants = int(str(signal_counts["extra_tenants"]))
    objects = await _rows(
        conn,
        "adoption_old_objects",
        views=list(OLD_VIEWS),
        functions=list(OLD_FUNCTIONS),
        tables=list(old.tables),
    )
    by_kind: dict[str, list[str]] = {}
    for row in objects:
        by_kind.setdefault(str(row["kind"]), []).append(str(row["name"]))
    lines = [
        "adopt the old Node/Supabase system's database in place, keeping every row: "
        f"{counts['summaries']} aoer_summary, {counts['events']} metrics_events, "
        f"{counts['jobs']} aoer_queue, {counts['failures']} aoer_failures, "
        f"{signals} aiv_raw_signals",
        f"create {int(str(counts['tenants'])) + extra_tenants} tenants, one per tenant id found, "
        "named 'Tenant <first 8 digits of its id>' (rename them later)",
    ]
    if counts["merged_jobs"]:
        lines.append(
            f"coalesce {counts['merged_jobs']} duplicate waiting jobs of "
            f"{counts['merged_tenants']} tenants into one per tenant (the earliest scheduled "
            "keeps the highest priority; the others are closed as completed, naming it)"
        )
    if counts["processing"]:
        lines.append(
            f"give {counts['processing']} jobs the old worker had in hand an expired lease "
            "(the workers take them back as a lost attempt)"
        )
    for kind in ("policy", "trigger", "view", "function"):
        if by_kind.get(kind):
            lines.append(f"drop the old {kind} {', '.join(by_kind[kind])}")
    lines.append(
        "replace the old tables with this schema's (constraints, indexes, leases, priority "
        "rank, one waiting job per tenant, RLS on request.jwt.claims) through the migrations "
        "below; carry other roles' grants (as reads: 0030) and publications over"
    )
    if retention is not None:
        lines += await _retention_preview(conn, retention)
    return lines


async def _retention_preview(conn: Connection, ages: RetentionAges) -> list[str]:
    [old] = await _rows(
        conn,
        "adoption_retention_preview",
        jobs_days=ages.jobs,
        failures_days=ages.failures,
        events_days=ages.events,
    )
    doomed = [
        f"{plural(int(str(old[key])), what)} older than {plural(days, 'day')} ({setting})"
        for key, what, days, setting in (
            ("jobs", "finished job", ages.jobs, "AOER_RETAIN_JOBS_DAYS"),
            ("failures", "failure", ages.failures, "AOER_RETAIN_FAILURES_DAYS"),
            ("events", "score history event", ages.events, "AOER_RETAIN_EVENTS_DAYS"),
        )
        if int(str(old[key]))
    ]
    if not doomed:
        return []
    return [
        "note: the first worker's daily retention will then delete "
        + ", ".join(doomed)
        + "; to keep them, set those ages higher before starting workers"
    ]


async def set_aside(conn: Connection, old: OldDatabase) -> None:
    """Drop the old views, functions and triggers; move the old tables to `aoer_adoption`."""
    objects = await _rows(
        conn,
        "adoption_old_objects",
        views=list(OLD_VIEWS),
        functions=list(OLD_FUNCTIONS),
        tables=list(old.tables),
    )
    await conn.execute(query("adoption_create_schema"))
    # Catalog names quoted by regclass/regprocedure/format(%I): never user input.
    for row in objects:
        kind, name = str(row["kind"]), str(row["name"])
        if kind in ("view", "function", "trigger"):
            logger.info("adoption: dropping the old %s %s", kind, name)
            await conn.execute(f"DROP {kind.upper()} {name}")
    for table in old.tables:
        await conn.execute(f"ALTER TABLE public.{table} SET SCHEMA {ASIDE_SCHEMA}")
    if not old.has_signals:
        await conn.execute(query("adoption_empty_signals"))


_COPIES: tuple[tuple[LiteralString, str], ...] = (
    ("adoption_create_tenants", "tenants created"),
    ("adoption_copy_signals", "aiv_raw_signals rows"),
    ("adoption_copy_summaries", "aoer_summary rows"),
    ("adoption_copy_events", "metrics_events rows"),
    ("adoption_copy_jobs", "aoer_queue rows"),
    ("adoption_copy_failures", "aoer_failures rows"),
)


async def copy_rows(conn: Connection) -> dict[str, int]:
    """Copy the set-aside rows into the tables migration 0001 just made; counts per step."""
    copied: dict[str, int] = {}
    for name, what in _COPIES:
        cur = await conn.execute(query(name))
        copied[what] = cur.rowcount
        logger.info("adoption: %d %s", cur.rowcount, what)
    [coalesced] = await _rows(conn, "adoption_coalesced")
    copied["waiting jobs coalesced"] = int(str(coalesced["n"]))
    logger.info(
        "adoption: %d duplicate waiting jobs closed into their tenant's earliest (error_message"
        " names it)",
        copied["waiting jobs coalesced"],
    )
    return copied


async def finish(conn: Connection) -> None:
    """Carry other roles' grants and publications over, then drop the set-aside tables."""
    await conn.execute(query("adoption_carry_grants"))
    await conn.execute(query("adoption_drop_aside"))
