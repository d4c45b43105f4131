"""The score as of a past date equals today's score of the same signals shifted in time."""

from datetime import timedelta

from aoer.db.pool import Connection
from tests.conftest import AddSignals, MakeTenant, utc_today


async def test_score_as_of_a_past_day_matches_todays_score_of_shifted_signals(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    past, today = await make_tenant("past"), await make_tenant("today")
    rows = [
        {"days_ago": d, "aeo": str(40 + d * 1.5), "geo": str(60 - d), "ugc": "55.55"}
        for d in range(0, 40, 3)
    ]
    shift = 20
    await add_signals(past, [r | {"days_ago": r["days_ago"] + shift} for r in rows])
    await add_signals(today, rows)
    # a row after the as-of date must be ignored, like a future row today
    await add_signals(past, [{"days_ago": shift - 5, "aeo": "99", "geo": "99", "ugc": "99"}])
    cur = await conn.execute(
        "SELECT aoer_score, visibility_risk, metrics FROM aoer_compute_scores_as_of(%s, %s)"
        " UNION ALL SELECT aoer_score, visibility_risk, metrics FROM aoer_compute_scores(%s)",
        ([past], utc_today() - timedelta(days=shift), [today]),
    )
    as_of, now = await cur.fetchall()
    assert as_of == now
    assert now["metrics"]["dataPoints"] == 11
