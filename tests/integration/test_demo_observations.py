"""`aoer up --demo`'s answer-engine observations: six engines, local competitors, and signals
derived from them that keep the demo's scores (DESIGN §14)."""

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS, load_demo
from aoer.scoring.observations import KNOWN_ENGINES
from tests.conftest import session_of


async def test_the_demo_observes_six_engines_and_derives_its_recent_signals(
    conn: Connection,
) -> None:
    cur = await conn.execute("SELECT dealer_id, date, aeo, geo FROM aiv_raw_signals")
    assert await cur.fetchall() == []
    ids = await load_demo(session_of(conn))
    cur = await conn.execute(
        "SELECT dealer_id, date, engine, mentioned, cited, competitors FROM answer_observations"
    )
    rows = await cur.fetchall()
    assert {r["engine"] for r in rows} == set(KNOWN_ENGINES)
    assert {r["dealer_id"] for r in rows} <= set(ids)
    assert len({r["dealer_id"] for r in rows}) >= len(DEMO_DEALERS) - 2  # stale ones may lack
    per_city = defaultdict(set)
    for r in rows:
        per_city[r["dealer_id"]].update(r["competitors"])
    assert all(3 <= len(names) <= 6 for names in per_city.values())
    # Every observed day's aeo/geo is derived from that day's answers (all engines).
    day: dict[tuple[object, object], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        counts = day[(r["dealer_id"], r["date"])]
        counts[0] += 1
        counts[1] += r["mentioned"]
        counts[2] += r["cited"]
    cur = await conn.execute(
        "SELECT dealer_id, date, aeo, geo, aeo_derived, geo_derived FROM aiv_raw_signals"
        " WHERE date > current_date - 31"
    )
    signals = {(s["dealer_id"], s["date"]): s for s in await cur.fetchall()}
    assert set(day) <= set(signals)
    cent = Decimal("0.01")
    for key, (answers, mentioned, cited) in day.items():
        s = signals[key]
        assert (s["aeo_derived"], s["geo_derived"]) == (True, True)
        assert s["aeo"] == (Decimal(100 * mentioned) / answers).quantize(cent, ROUND_HALF_UP)
        assert s["geo"] == (Decimal(100 * cited) / answers).quantize(cent, ROUND_HALF_UP)
    # Loading again changes nothing.
    await load_demo(session_of(conn))
    cur = await conn.execute("SELECT count(*) AS n FROM answer_observations")
    assert (await cur.fetchone()) == {"n": len(rows)}
