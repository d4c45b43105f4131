"""Signal ingestion: validation names row and field; upserts are idempotent and all-or-nothing."""

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from aoer.db.pool import Connection
from aoer.scoring.demo import DEMO_DEALERS, load_demo
from aoer.scoring.signals import SignalValidationError, upsert_signals, validate_rows
from tests.conftest import MakeTenant, session_of, utc_today


def row(dealer: object, days_back: int = 1, **values: Any) -> dict[str, Any]:
    base = {"dealerId": str(dealer), "date": (utc_today() - timedelta(days_back)).isoformat()}
    return base | values


async def count(conn: Connection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # type: ignore[arg-type]
    found = await cur.fetchone()
    assert found is not None
    return int(found["n"])


def test_validation_names_each_bad_row_and_field() -> None:
    dealer = uuid4()
    with pytest.raises(SignalValidationError) as caught:
        validate_rows(
            [
                row(dealer, aeo=50),
                row(dealer, 2, aeo=101),
                row("nope", 3),
                row(dealer, -3),
                row(dealer, 4, geo="12.345"),
                row(dealer, 5, colour="red"),
            ]
        )
    found = {(e.row, e.field) for e in caught.value.errors}
    assert found == {(1, "aeo"), (2, "dealerId"), (3, "date"), (4, "geo"), (5, "colour")}
    assert str(caught.value).startswith("row 1 (counting from 0), field aeo:")


async def test_upsert_replaces_a_resent_day(conn: Connection, make_tenant: MakeTenant) -> None:
    dealer = await make_tenant()
    first = await upsert_signals(
        session_of(conn), validate_rows([row(dealer, aeo=10), row(dealer, 2)])
    )
    again = await upsert_signals(session_of(conn), validate_rows([row(dealer, aeo="20.50")]))
    assert (first.upserted, again.upserted) == (2, 1)
    assert first.tenant_ids == [dealer]
    cur = await conn.execute(
        "SELECT aeo FROM aiv_raw_signals WHERE date = current_date - 1 AND dealer_id = %s",
        (dealer,),
    )
    assert await cur.fetchall() == [{"aeo": Decimal("20.50")}]
    assert await count(conn, "aiv_raw_signals") == 2


async def test_unknown_dealer_writes_nothing(conn: Connection, make_tenant: MakeTenant) -> None:
    dealer = await make_tenant()
    rows = validate_rows([row(dealer, aeo=1), row(uuid4(), aeo=2)])
    with pytest.raises(
        SignalValidationError, match=r"row 1 \(counting from 0\), field dealerId: unknown tenant"
    ):
        await upsert_signals(session_of(conn), rows)
    assert await count(conn, "aiv_raw_signals") == 0


async def test_demo_load_is_idempotent_with_signals_and_history(conn: Connection) -> None:
    ids = await load_demo(session_of(conn))
    await load_demo(session_of(conn))
    assert len(ids) == len(DEMO_DEALERS) == await count(conn, "tenants")
    rows = await count(conn, "aiv_raw_signals")
    assert len(ids) * 50 < rows <= len(ids) * 90
    # 89 days of back-filled history per dealer, each scored as of its own day
    assert await count(conn, "metrics_events") == len(ids) * 89
    cur = await conn.execute(
        "SELECT count(DISTINCT (event_data ->> 'aoerScore')) AS n FROM metrics_events"
    )
    assert (await cur.fetchone()) == {"n": pytest.approx(len(ids) * 89, rel=0.5)}
