"""Whether a day of signals gets vacuumed before the next refresh reads it (migration 0021).

Needs a server with autovacuum on (this repository's shared test server runs with it off; a
scratch cluster does: see bench/README.md, "Signals vacuumed as they arrive"). Creates its
own database (AOER_BENCH_DATABASE_URL's server, database `aoer_vacuum_bench`, dropped at the
end), N tenants and D days of signals in this month's partition, loaded a day at a time and
vacuumed, as a partition looks late in a month. Then one more day arrives under each
setting of `autovacuum_vacuum_insert_scale_factor` on that partition: the server's (0.2 by
default) and the product's (0.01), and it reports how long autovacuum took to vacuum it
after the day's rows committed, or that it did not within `--wait` seconds.
"""

import argparse
import asyncio
import os
import time
from datetime import date, timedelta
from typing import Any

from aoer.db.pool import Connection, connect
from aoer.db.schema import migrate
from common import DEFAULT_URL, database_name, drop_database, recreate_database, with_database
from dataset import TENANTS

# One day of every tenant's signals, in tenant order (the way a daily load arrives).
DAY = """
INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal)
SELECT t.id, %(day)s::date, 50, 30 + random() * 40, 40, 30, 20
FROM tenants t
ORDER BY t.id
"""

STATS = """
SELECT autovacuum_count AS vacuums, last_autovacuum, n_ins_since_vacuum AS new_rows,
       (SELECT reltuples FROM pg_class WHERE oid = %(part)s::regclass)::bigint AS rows_then
FROM pg_stat_user_tables WHERE relid = %(part)s::regclass
"""


def say(message: str) -> None:
    print(f"[vacuum {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def stats(conn: Connection, part: str) -> dict[str, Any]:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await (await conn.execute(STATS, {"part": part})).fetchone()
    assert row is not None
    return dict(row)


async def settled(conn: Connection, part: str, new_rows: int) -> dict[str, Any]:
    """The partition's statistics once they count `new_rows` rows inserted since its last
    vacuum (within 10 s)."""
    for _ in range(50):
        now = await stats(conn, part)
        if now["new_rows"] == new_rows:
            return now
        await asyncio.sleep(0.2)
    raise SystemExit(f"{part}: the statistics never counted {new_rows:,} new rows: {now}")


async def add_day(conn: Connection, day: date) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")  # no FK checks
        await conn.execute(DAY, {"day": day})


async def wait_for_vacuum(conn: Connection, part: str, before: int, wait_s: float) -> str:
    committed = time.monotonic()
    while time.monotonic() - committed < wait_s:
        now = await stats(conn, part)
        if now["vacuums"] > before:
            return f"vacuumed {time.monotonic() - committed:.0f} s after the day committed"
        await asyncio.sleep(2)
    return f"not vacuumed within {wait_s:.0f} s"


async def run(args: argparse.Namespace) -> None:
    url = with_database(os.environ.get("AOER_BENCH_DATABASE_URL", DEFAULT_URL), "aoer_vacuum_bench")
    admin = await connect(with_database(url, "postgres"))
    try:
        cur = await admin.execute(
            "SELECT current_setting('autovacuum') AS on_,"
            " current_setting('autovacuum_naptime') AS naptime"
        )
        row = await cur.fetchone()
    finally:
        await admin.close()
    if not row or row["on_"] != "on":
        raise SystemExit(
            "autovacuum is off on this server: point AOER_BENCH_DATABASE_URL at one with it on"
            " (bench/README.md shows a scratch cluster)"
        )
    recreate_database(url)
    await migrate(url)
    conn = await connect(url)
    try:
        cur = await conn.execute(
            "SELECT date_trunc('month', current_date)::date AS first,"
            " 'aiv_raw_signals_p' || to_char(current_date, 'YYYY_MM') AS part"
        )
        month = await cur.fetchone()
        assert month is not None
        part = str(month["part"])
        first = date.fromisoformat(str(month["first"]))
        await conn.execute(TENANTS, {"tenants": args.tenants})
        say(f"{args.tenants:,} tenants; loading {args.days} days into {part}, a day at a time")
        for d in range(args.days):
            await add_day(conn, first + timedelta(days=d))
        # Backends report their inserts to the statistics at most once a second: let the load's
        # arrive before the vacuum resets the count, or autovacuum would see them as new.
        await settled(conn, part, args.tenants * args.days)
        await conn.execute(f"VACUUM (ANALYZE) {part}")
        await settled(conn, part, 0)
        say(f"vacuumed; autovacuum_naptime {row['naptime']}")
        day = args.days
        factor = "autovacuum_vacuum_insert_scale_factor"
        for label, setting in (
            ("the server's factor", f"RESET ({factor})"),
            ("factor 0.01 (migration 0021)", f"SET ({factor} = 0.01)"),
        ):
            await conn.execute(f"ALTER TABLE {part} {setting}")
            before = await stats(conn, part)
            if before["new_rows"] > 0:  # the previous day's rows, still waiting
                await conn.execute(f"VACUUM {part}")
                before = await settled(conn, part, 0)
            await add_day(conn, first + timedelta(days=day))
            day += 1
            result = await wait_for_vacuum(conn, part, before["vacuums"], args.wait)
            say(
                f"{label}: one day ({args.tenants:,} rows) into {before['rows_then']:,} rows: "
                f"{result}"
            )
    finally:
        await conn.close()
        drop_database(url)
        say(f"dropped {database_name(url)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument(
        "--days", type=int, default=25, help="days already in the partition (at most 26)"
    )
    parser.add_argument("--wait", type=float, default=180, help="seconds to wait for a vacuum")
    args = parser.parse_args()
    if not 1 <= args.days <= 26:  # two more days must fit in the shortest month
        parser.error("--days must be between 1 and 26")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
