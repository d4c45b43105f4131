"""A large ingest is merged chunk by chunk while the next chunk is read (DESIGN §14): the
result is the one-chunk result, and a problem in any chunk still leaves nothing written."""

from itertools import count
from uuid import UUID

import pytest

from aoer.db.pool import Connection
from aoer.scoring.observations import (
    ObservationRow,
    ObservationValidationError,
    StagedRow,
    ingest_observations,
)
from aoer.scoring.rows import FILE_LINES
from tests.conftest import MakeTenant, days_ago, session_of

ENGINES = ("chatgpt", "gemini", "claude")


def observations(dealers: list[UUID]) -> list[ObservationRow]:
    """Days split across chunks, competitors and URLs named twice in one answer."""
    numbers = count()
    rows = []
    for dealer in dealers:
        for day in (1, 2, 3):
            for engine in ENGINES:
                for prompt in ("best dealer", "cheap service"):
                    n = next(numbers)
                    rows.append(
                        ObservationRow(
                            dealer_id=dealer,
                            date=days_ago(day),
                            engine=engine,
                            prompt=prompt,
                            mentioned=n % 2 == 0,
                            position=1 + n % 3 if n % 2 == 0 else None,
                            cited=n % 3 == 0,
                            cited_urls=["https://d.example/a"] * (1 + n % 2) if n % 3 == 0 else [],
                            competitors=["Hill Motors", "Bay Auto", "Hill Motors"][: n % 4],
                        )
                    )
    return rows


def staged(rows: list[ObservationRow]) -> list[StagedRow]:
    return [row.staged(line) for line, row in enumerate(rows, start=2)]


async def tables(conn: Connection, dealers: list[UUID]) -> list[list[tuple[object, ...]]]:
    """The observations, rollups and derived signals of `dealers`, dealers numbered by place."""
    place = {dealer: i for i, dealer in enumerate(dealers)}
    found = []
    for sql in (
        "SELECT dealer_id, date, engine, prompt, mentioned, position, cited, cited_urls,"
        " competitors FROM answer_observations",
        "SELECT dealer_id, date, engine, answers, mentions, cited, rival_mentions, positions,"
        " position_sum FROM answer_observation_days",
        "SELECT dealer_id, date, name, mentions FROM answer_competitor_days",
        "SELECT dealer_id, date, url, answers FROM answer_cited_url_days",
        "SELECT dealer_id, date, aeo, geo FROM aiv_raw_signals",
    ):
        cur = await conn.execute(sql)  # type: ignore[arg-type]
        rows = [tuple(r.values()) for r in await cur.fetchall() if r["dealer_id"] in place]
        found.append(sorted((place[r[0]], *r[1:]) for r in rows))  # type: ignore[index]
    return found


async def test_chunk_by_chunk_gives_what_one_chunk_gives(
    conn: Connection, make_tenant: MakeTenant
) -> None:
    chunked = [await make_tenant(), await make_tenant()]
    whole = [await make_tenant(), await make_tenant()]
    session = session_of(conn)

    small = await ingest_observations(
        session, staged(observations(chunked)), derive=True, chunk_rows=5
    )
    big = await ingest_observations(session, staged(observations(whole)), derive=True)

    assert small.upserted == big.upserted == 36
    assert (small.tenant_ids, small.derived) == (sorted(chunked), sorted(chunked))
    assert await tables(conn, chunked) == await tables(conn, whole)
    rollups = await tables(conn, chunked)
    assert len(rollups[1]) == 2 * 3 * 3  # a rollup per dealer, day and engine
    assert rollups[2], "competitors counted"


@pytest.mark.parametrize("problem", ["repeat", "unknown"])
async def test_a_problem_in_a_later_chunk_is_named_and_nothing_is_written(
    conn: Connection, make_tenant: MakeTenant, problem: str
) -> None:
    dealer = await make_tenant()
    rows = observations([dealer])[:12]
    if problem == "repeat":  # line 14 repeats line 2, two chunks later
        rows.append(rows[0])
        expected = (14, "prompt", "duplicates line 2 (same dealer, date, engine and prompt)")
    else:
        stranger = UUID("00000000-0000-4000-8000-000000000015")
        rows.append(rows[0].model_copy(update={"dealer_id": stranger}))
        expected = (14, "dealer_id", f"unknown tenant {stranger}")

    with pytest.raises(ObservationValidationError) as raised:
        await ingest_observations(
            session_of(conn), staged(rows), derive=True, naming=FILE_LINES, chunk_rows=5
        )

    errors = [(e.row, e.field, e.message) for e in raised.value.errors]
    assert errors == [expected]
    for table in ("answer_observations", "answer_observation_days", "aiv_raw_signals"):
        cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # type: ignore[arg-type]
        assert (await cur.fetchone()) == {"n": 0}, table
