"""The dashboard's reads: fleet sorting, filtering and paging, fleet stats, one dealership."""

from decimal import Decimal
from uuid import UUID

from aoer import queue
from aoer.dashboard import data
from aoer.db.pool import Connection
from tests.conftest import AddSignals, MakeTenant, session_of


async def _scored(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals, name: str, aeo: str, n: int
) -> UUID:
    """A tenant with `n` days of flat signals (score = aeo, risk 0.80 when n < 5 else 0.20)."""
    tid = await make_tenant(name)
    await add_signals(tid, [{"days_ago": d, "aeo": aeo, "geo": aeo, "ugc": aeo} for d in range(n)])
    await session_of(conn).scores.recompute([tid])
    return tid


async def test_fleet_sorts_by_every_key_and_keeps_uncomputed_last(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    await _scored(conn, make_tenant, add_signals, "Bravo Motors", "70.00", 10)  # risk 0.20
    await _scored(conn, make_tenant, add_signals, "alpha Cars", "50.00", 2)  # risk 0.80
    await _scored(conn, make_tenant, add_signals, "Charlie Autos", "90.00", 10)  # risk 0.20
    await make_tenant("Delta Trucks")  # never computed

    async def names(sort: data.SortKey, descending: bool) -> list[str]:
        page = await data.fleet_page(
            session_of(conn), data.FleetFilter(sort=sort, descending=descending)
        )
        return [r.name for r in page.rows]

    assert await names("score", True) == [
        "Charlie Autos",
        "Bravo Motors",
        "alpha Cars",
        "Delta Trucks",
    ]
    assert await names("score", False) == [
        "alpha Cars",
        "Bravo Motors",
        "Charlie Autos",
        "Delta Trucks",
    ]
    # equal risks fall back to the name, case-insensitively
    assert await names("risk", True) == [
        "alpha Cars",
        "Bravo Motors",
        "Charlie Autos",
        "Delta Trucks",
    ]
    assert await names("risk", False) == [
        "Bravo Motors",
        "Charlie Autos",
        "alpha Cars",
        "Delta Trucks",
    ]
    assert await names("name", False) == [
        "alpha Cars",
        "Bravo Motors",
        "Charlie Autos",
        "Delta Trucks",
    ]
    assert await names("name", True) == [
        "Delta Trucks",
        "Charlie Autos",
        "Bravo Motors",
        "alpha Cars",
    ]
    assert (await names("updated", True))[-1] == "Delta Trucks"


async def test_fleet_filters_by_name_grade_and_risk_and_pages(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    for i in range(7):
        await _scored(conn, make_tenant, add_signals, f"Motors {i}", f"{40 + i * 7}.00", 10)
    await _scored(conn, make_tenant, add_signals, "Sparse 100% Cars", "85.00", 2)
    await make_tenant("New_Dealer")

    async def page(**kw: object) -> data.FleetPage:
        return await data.fleet_page(session_of(conn), data.FleetFilter(**kw))  # type: ignore[arg-type]

    by_name = await page(name="motors")
    assert by_name.matching == 7
    assert len(by_name.rows) == 7
    # LIKE wildcards in the filter are plain characters
    assert [r.name for r in (await page(name="100%")).rows] == ["Sparse 100% Cars"]
    assert (await page(name="_")).matching == 1
    excellent = await page(grade="Excellent")
    assert {r.name for r in excellent.rows} == {"Motors 6", "Sparse 100% Cars"}
    assert all(r.grade == "Excellent" for r in excellent.rows)
    never = await page(grade=data.NEVER_COMPUTED)
    assert [r.name for r in never.rows] == ["New_Dealer"]
    assert never.rows[0].aoer_score is None
    high = await page(risk_level="High")
    assert [r.name for r in high.rows] == ["Sparse 100% Cars"]
    assert (await page(risk_level="Low", grade="Fair")).matching == 3  # 40, 47 and 54

    first = await page(sort="name", descending=False, per_page=4, page=1)
    third = await page(sort="name", descending=False, per_page=4, page=3)
    assert first.matching == 9
    assert first.pages == 3
    assert [r.name for r in first.rows] == ["Motors 0", "Motors 1", "Motors 2", "Motors 3"]
    assert [r.name for r in third.rows] == ["Sparse 100% Cars"]
    assert (await page(per_page=4, page=4)).rows == []


async def test_fleet_stats_report_totals_queue_failures_and_ticks(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    a = await _scored(conn, make_tenant, add_signals, "Able", "80.00", 10)
    b = await _scored(conn, make_tenant, add_signals, "Baker", "20.00", 2)
    c = await make_tenant("Charlie")
    await queue.enqueue(session_of(conn), a, "urgent")
    await queue.enqueue(session_of(conn), b, "low")
    await queue.enqueue(session_of(conn), c, "low")
    [job] = list(await session_of(conn, lease_s=30.0).jobs.claim("w1", 1))
    assert job.tenant_id == a
    await queue.fail(session_of(conn), "w1", [(job, "boom: <script>alert(1)</script>")])
    await conn.execute(
        "INSERT INTO aoer_cron_ticks (name, tick, fired_by) VALUES ('recompute', now(), 'w1')"
    )

    stats = await data.fleet_stats(session_of(conn), "recompute")

    assert stats.totals.tenants == 3
    assert stats.totals.computed == 2
    assert stats.totals.mean_score == Decimal("50.00")
    assert stats.totals.no_data == 0
    assert stats.totals.by_risk == {"Low": 1, "Medium": 0, "High": 1, "Critical": 0, "No data": 0}
    depth = {(d.status, d.priority): d.jobs for d in stats.depth}
    assert depth[("queued", "low")] == 2
    assert depth[("queued", "urgent")] == 1
    [failure] = stats.failures
    assert failure.name == "Able"
    assert failure.error_message.startswith("boom")
    assert failure.will_retry
    assert failure.retry_count == 1
    assert stats.last_tick is not None
    assert stats.last_tick.fired_by == "w1"


async def test_tenant_view_distinguishes_never_computed_no_signals_and_scored(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    fresh = await make_tenant("Fresh")
    view = await data.tenant_view(session_of(conn), fresh)
    assert view is not None
    assert not view.computed
    assert view.signal_rows == 0
    assert view.metrics == {}
    assert view.events == []

    await session_of(conn).scores.recompute([fresh])
    view = await data.tenant_view(session_of(conn), fresh)
    assert view is not None
    assert view.computed
    assert view.signal_rows == 0
    assert view.metrics == {"error": "No data available"}

    scored = await _scored(conn, make_tenant, add_signals, "Scored", "64.00", 6)
    await queue.enqueue(session_of(conn), scored, "high")
    view = await data.tenant_view(session_of(conn), scored)
    assert view is not None
    assert view.aoer_score == Decimal("64.00")
    assert view.grade == "Good"
    assert view.signal_rows == 6
    assert view.queue_status.pending == 1
    assert view.metrics["dataPoints"] == 6

    assert await data.tenant_view(session_of(conn), UUID(int=0)) is None
