"""Training over many tenant-days: the worker reads sums, never the rows, so its memory and its
event loop (job leases, the API in `aoer up`) do not grow with the fleet."""

import asyncio
import tracemalloc

import pytest

from aoer.db.pool import Connection
from aoer.scoring import model
from aoer.training import Policy
from tests.conftest import session_of

TENANTS = 2_000
DAYS = 194  # the default window: 180 training days and 14 held out
TICK_S = 0.02
MAX_PEAK_BYTES = 2_000_000  # the old code held every tenant-day: ~100 MB for these 388,000
MAX_LATE_S = 1.0  # the old code parsed them on the event loop: over 3 s here


async def many_tenant_days(conn: Connection) -> None:
    """TENANTS x DAYS tenant-days whose outcome follows known weights, made by the server."""
    await conn.execute(
        "INSERT INTO tenants (name) SELECT 'Scale ' || g FROM generate_series(1, %s) g",
        (TENANTS,),
    )
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute(
        """INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal,
                                        observed_aiv)
           SELECT id, day, seo, aeo, geo, ugc, geolocal,
                  least(greatest(round(0.1 * seo + 0.2 * aeo + 0.3 * geo + 0.15 * ugc
                                       + 0.25 * geolocal + (random() * 4 - 2)::numeric, 2),
                                 0), 100)
           FROM (SELECT t.id, current_date - d AS day,
                        round((20 + 70 * random())::numeric, 2) AS seo,
                        round((20 + 70 * random())::numeric, 2) AS aeo,
                        round((20 + 70 * random())::numeric, 2) AS geo,
                        round((20 + 70 * random())::numeric, 2) AS ugc,
                        round((20 + 70 * random())::numeric, 2) AS geolocal
                 FROM tenants t CROSS JOIN generate_series(0, %s) d) days""",
        (DAYS - 1,),
    )
    await conn.execute("ANALYZE aiv_raw_signals")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_training_on_many_tenant_days_holds_little_memory_and_never_blocks_the_loop(
    conn: Connection,
) -> None:
    await many_tenant_days(conn)
    import scipy.optimize  # noqa: F401  (loaded once per process; not the run's memory)

    lateness: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(TICK_S)
            lateness.append(loop.time() - before - TICK_S)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK_S * 3)
    tracemalloc.start()
    try:
        run = await model.train(
            session_of(conn), Policy(), trigger="cli", by=model.Actor("cli:test", "admin")
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        done.set()
        await ticking

    assert run.evaluation.train_rows == TENANTS * 180
    assert run.evaluation.holdout_tenants == TENANTS
    assert run.evaluation.decision == "promoted"
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.1f} MB"
    assert max(lateness) < MAX_LATE_S, f"the event loop stalled {max(lateness):.2f} s"
