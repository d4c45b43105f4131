"""What the chaos harness writes and reads in plain SQL: the fleet, the jobs, the tally.

Only the tables of DESIGN §2 (tenants, aiv_raw_signals, aoer_queue, metrics_events,
aoer_failures) and PostgreSQL's own views; never the `aoer` package's Python API.
"""

import hashlib
import threading
import time
from dataclasses import dataclass
from uuid import UUID

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]

SIGNAL_DAYS = 31  # the score reads a 30-day window
FEEDER_APP = "chaos-feeder"  # the harness's own enqueues, told apart in the server log

TENANTS_SQL = """
INSERT INTO tenants (id, name, domain)
SELECT md5('aoer-chaos-tenant-' || i)::uuid, 'Chaos Motors #' || i, 'chaos-' || i || '.example'
FROM generate_series(1, %(tenants)s) AS i
"""
SIGNALS_SQL = """
INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal)
SELECT md5('aoer-chaos-tenant-' || i)::uuid, current_date - d,
       round((20 + random() * 70)::numeric, 2), round((20 + random() * 70)::numeric, 2),
       round((20 + random() * 70)::numeric, 2), round((20 + random() * 70)::numeric, 2),
       round((20 + random() * 70)::numeric, 2)
FROM generate_series(1, %(tenants)s) AS i CROSS JOIN generate_series(0, %(days)s - 1) AS d
"""
# Every table a scenario writes, emptied before the next one so each is counted alone.
RESET_SQL = "TRUNCATE metrics_events, aoer_failures, aoer_queue"
# Jobs for tenants that have no waiting job; the rest are skipped (one waiting job each).
ENQUEUE_SQL = """
INSERT INTO aoer_queue (tenant_id, priority)
SELECT id, 'medium' FROM unnest(%(ids)s::uuid[]) AS t (id)
ON CONFLICT (tenant_id) WHERE status = 'queued' DO NOTHING
RETURNING id
"""
UNFINISHED_SQL = """
SELECT count(*) FILTER (WHERE status = 'processing'
                           OR (status = 'queued' AND scheduled_at <= now()))
FROM aoer_queue
"""
TALLY_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE status = 'processing'),
       count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'failed' AND retry_count < max_retries),
       count(*) FILTER (WHERE status = 'queued' AND scheduled_at <= now()),
       count(*) FILTER (WHERE status = 'queued' AND scheduled_at > now())
FROM aoer_queue
"""
DUPLICATED_SQL = """
SELECT count(*) FROM (
    SELECT event_data ->> 'jobId' FROM metrics_events
    WHERE event_type = 'aoer_recompute' GROUP BY 1 HAVING count(*) > 1) dup
"""
# A completed job whose recompute event is missing was not really done.
COMPLETED_WITHOUT_EVENT_SQL = """
SELECT count(*) FROM aoer_queue q
WHERE q.status = 'completed'
  AND NOT EXISTS (SELECT 1 FROM metrics_events e
                  WHERE e.event_type = 'aoer_recompute' AND e.event_data ->> 'jobId' = q.id::text)
"""
MISSING_SQL = """
SELECT count(*) FROM unnest(%(ids)s::uuid[]) AS k (id)
WHERE NOT EXISTS (SELECT 1 FROM aoer_queue q WHERE q.id = k.id)
"""
TAKEBACKS_SQL = """
SELECT error_data ->> 'workerId', extract(epoch FROM created_at)::float8
FROM aoer_failures WHERE error_data ->> 'reason' = 'lease_expired'
"""
# The jobs a worker holds: committed claims in its name, and rows its open transactions have
# locked (pgrowlocks: an uncommitted claim still looks `queued` to everyone else).
HELD_COMMITTED_SQL = """
SELECT id, tenant_id FROM aoer_queue WHERE status = 'processing' AND locked_by = %(worker)s
"""
HELD_LOCKED_SQL = """
SELECT q.id, q.tenant_id
FROM pgrowlocks('aoer_queue') AS l
JOIN aoer_queue q ON q.ctid = l.locked_row
WHERE l.pids && ARRAY(SELECT pid FROM pg_stat_activity WHERE application_name = %(app)s)
"""
BACKENDS_SQL = """
SELECT pid, state, left(regexp_replace(query, '\\s+', ' ', 'g'), 300)
FROM pg_stat_activity WHERE application_name = %(app)s AND xact_start IS NOT NULL
"""


def tenant_ids(count: int) -> list[UUID]:
    """The ids `register_fleet` gives tenants 1..count (md5 of a fixed text)."""
    return [
        UUID(hashlib.md5(f"aoer-chaos-tenant-{i}".encode()).hexdigest())
        for i in range(1, count + 1)
    ]


def register_fleet(conn: Conn, tenants: int) -> None:
    """Tenants with a month of signals each, in two set-based statements."""
    with conn.transaction():
        # Rows reference tenants inserted just before; skip the per-row FK trigger (superuser).
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(TENANTS_SQL, {"tenants": tenants})
        conn.execute(SIGNALS_SQL, {"tenants": tenants, "days": SIGNAL_DAYS})
    conn.execute("VACUUM (FREEZE, ANALYZE) tenants, aiv_raw_signals")


def reset(conn: Conn) -> None:
    conn.execute(RESET_SQL)
    conn.execute("VACUUM ANALYZE aoer_queue, metrics_events, aoer_failures")


def scalar(conn: Conn, sql: str, params: dict[str, object] | None = None) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(str(row[0])) if row and row[0] is not None else 0


class Feeder(threading.Thread):
    """Enqueues `total` jobs over the fleet's tenants, topping the queue up in waves.

    At most one waiting job per tenant exists, so more jobs than tenants arrive in waves: a
    tenant whose job was claimed gets the next one. Ids of every job inserted are kept.
    """

    def __init__(
        self, url: str, tenants: list[UUID], total: int, low_water: int, *, endless: bool
    ) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.tenants = tenants
        self.total = total
        self.endless = endless  # past `total` until `finish` or `stop`
        self.low_water = low_water
        self.ids: list[UUID] = []
        self.errors = 0
        self._halt = threading.Event()
        self._cursor = 0

    def _wanted(self) -> int:
        return len(self.tenants) if self.endless else self.total - len(self.ids)

    def fill(self, conn: Conn, limit: int) -> None:
        while limit > 0 and self._wanted() > 0:
            take = min(limit, self._wanted(), len(self.tenants))
            chunk = [self.tenants[(self._cursor + i) % len(self.tenants)] for i in range(take)]
            with conn.transaction():
                rows = conn.execute(ENQUEUE_SQL, {"ids": chunk}).fetchall()
                conn.execute("SELECT pg_notify('aoer_queue', 'medium')")
            self._cursor = (self._cursor + take) % len(self.tenants)
            self.ids.extend(UUID(str(r[0])) for r in rows)
            limit -= take
            if not rows:
                return

    def run(self) -> None:
        while not self._halt.is_set() and self._wanted() > 0:
            try:
                with psycopg.connect(
                    self.url, autocommit=True, application_name=FEEDER_APP
                ) as conn:
                    while not self._halt.is_set() and self._wanted() > 0:
                        waiting = scalar(
                            conn, "SELECT count(*) FROM aoer_queue WHERE status = 'queued'"
                        )
                        if waiting < self.low_water:
                            self.fill(conn, 2 * self.low_water - waiting)
                        self._halt.wait(0.25)
            except psycopg.OperationalError:
                self.errors += 1  # the server restarts in scenario c: try again
                self._halt.wait(0.5)

    def done(self) -> bool:
        return self._halt.is_set() or self._wanted() <= 0

    def finish(self) -> None:
        """Stop feeding once `total` jobs are in (at once if there are already more)."""
        self.endless = False

    def stop(self) -> None:
        self._halt.set()


def wait_drained(url: str, timeout_s: float, poll_s: float = 0.25) -> float | None:
    """Seconds until no job is processing or due; None if still busy after `timeout_s`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                while time.monotonic() - start < timeout_s:
                    if scalar(conn, UNFINISHED_SQL) == 0:
                        return time.monotonic() - start
                    time.sleep(poll_s)
        except psycopg.OperationalError:
            time.sleep(poll_s)
    return None


@dataclass
class Tally:
    jobs: int
    stuck: int
    failed: int
    failed_superseded: int  # closed because the tenant's waiting job carries the retry
    waiting_due: int
    deferred: int  # queued with a backoff: will run, not lost
    duplicated: int
    completed_without_event: int
    missing: int  # ids the harness or clients were given that are not in aoer_queue

    @property
    def lost(self) -> int:
        return self.stuck + self.waiting_due + self.completed_without_event + self.missing


def tally(conn: Conn, known_ids: list[UUID]) -> Tally:
    row = conn.execute(TALLY_SQL).fetchone()
    assert row is not None
    jobs, stuck, failed, superseded, due, deferred = (int(str(v)) for v in row)
    return Tally(
        jobs=jobs,
        stuck=stuck,
        failed=failed,
        failed_superseded=superseded,
        waiting_due=due,
        deferred=deferred,
        duplicated=scalar(conn, DUPLICATED_SQL),
        completed_without_event=scalar(conn, COMPLETED_WITHOUT_EVENT_SQL),
        missing=scalar(conn, MISSING_SQL, {"ids": sorted(set(known_ids))}),
    )


def takebacks(conn: Conn) -> list[tuple[str, float]]:
    """(workerId, epoch seconds) of every job taken back because its lease expired."""
    return [(str(w), float(str(t))) for w, t in conn.execute(TAKEBACKS_SQL).fetchall()]
