"""The CSV fast path (`FastCells`) against the model: whatever it accepts, the model accepts
and stages as exactly the same text; plain lines take the fast path."""

from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any
from uuid import uuid4

from pydantic import ValidationError

from aoer.scoring.csvfile import Record
from aoer.scoring.observation_files import FastCells, _from_cells
from aoer.scoring.observations import ObservationRow, StagedRow

DEALER = str(uuid4())
TODAY = datetime.now(UTC).date()


def cells_as_read(raw: dict[str, str | None]) -> dict[str, Any]:
    """What the CSV reader hands over: cells stripped, blank ones None."""
    return {k: (v.strip() or None) if v is not None else None for k, v in raw.items()}


def by_model(cells: dict[str, Any]) -> StagedRow | None:
    try:
        row = ObservationRow.model_validate(_from_cells(Record(7, cells)), by_name=True)
    except ValidationError:
        return None
    return row.staged(7)


def pick(rng: Random, plain: list[str], odd: list[str]) -> str | None:
    """Mostly a plain spelling, so that whole rows are often valid; else an odd value,
    nothing, or random text."""
    roll = rng.random()
    if roll < 0.80:
        return rng.choice(plain)
    if roll < 0.90:
        return rng.choice(odd)
    if roll < 0.95:
        return None
    return "".join(rng.choice(RANDOM_CHARS) for _ in range(rng.randint(0, 8)))


def pick_list(rng: Random, plain: list[str], odd: list[str]) -> str | None:
    if rng.random() < 0.3:
        return None
    items = [rng.choice(plain) if rng.random() < 0.85 else rng.choice(odd) for _ in range(4)]
    return "|".join(items[: rng.randint(1, 4)])


RANDOM_CHARS = '01aZ-_.:/ |é"\\\x00\t{}'

BOOLS = ["true", "false", "TRUE", "False", "1", "0"]
ODD_BOOLS = ["yes", "No", "t", "F", "on", "2", "tru"]


def random_cells(rng: Random) -> dict[str, str | None]:
    return {
        "dealer_id": pick(
            rng, [DEALER], [DEALER.upper(), DEALER.replace("-", ""), "{" + DEALER + "}", "x"]
        ),
        "date": pick(
            rng,
            ["2026-11-01", TODAY.isoformat(), "2020-01-01"],
            [
                (TODAY + timedelta(1)).isoformat(),
                "2026-02-30",
                "2026-1-01",
                "1999-01-01",
                "2026-11-01T00:00",
                "20261101",
                "\u0662\u0660\u0662\u0666-11-01",
            ],
        ),
        "engine": pick(rng, ["chatgpt", "ai_overviews", "a" * 50], ["Chat", "a" * 51, "é", "a-b"]),
        "prompt": pick(
            rng,
            ["best dealer", "x" * 500, "Ünïcode, ok", 'say "hi"'],
            ["x" * 501, "a\x00b", "\udc80"],
        ),
        "mentioned": pick(rng, BOOLS, ODD_BOOLS),
        "cited": pick(rng, BOOLS, ODD_BOOLS),
        "position": pick(rng, ["1", "12", "999999999"], ["0", "01", "-1", "1.0", "9999999999"]),
        "cited_urls": pick_list(
            rng,
            [
                "https://a.example/x",
                "http://b.example",
                "https://a.example/p?q=1#f",
                "https://a.example/" + "x" * 482,
            ],
            [
                "HTTPS://A.example/",
                "ftp://a.example/",
                "https://",
                "https://a b.example/",
                "https://[::1]/",
                "https://[oops/",
                "https://é.example/",
                'https://a.example/"q',
                "https://a.example/x\\y",
                " https://a.example ",
                "https://a.example/" + "x" * 483,
                "https:/a.example",
                "",
            ],
        ),
        "competitors": pick_list(
            rng,
            ["Hill Motors", 'Bob\'s "Best"', "back\\slash", "x" * 200, "Škoda Plaza", "a{b}c"],
            ["x" * 201, "a\x01b", "", " ", "Tab\tIn"],
        ),
        "sentiment": pick(
            rng,
            ["0", "-0", "1", "-1", "1.0", "1.00", "0.5", "0.55", "-0.86", "-1.00", "0.50", "0.0"],
            ["1.01", ".5", "0.555", "2", "1e0", "+0.5", "-1.5", "00.5"],
        ),
    }


CASES = 20_000


def test_what_the_fast_path_accepts_the_model_accepts_and_stages_the_same() -> None:
    rng = Random(15)
    fast = FastCells()
    taken = valid = 0
    for _ in range(CASES):
        cells = cells_as_read(random_cells(rng))
        staged, expected = fast.staged(7, cells), by_model(cells)
        valid += expected is not None
        if staged is not None:
            taken += 1
            assert staged == expected, cells
    # The cases exercise both paths: many valid rows, most of them taken fast.
    assert valid > CASES // 20, valid
    assert taken > valid // 2, (valid, taken)


def test_plain_lines_take_the_fast_path_and_stage_as_the_model_does() -> None:
    plain = [
        {"dealer_id": DEALER, "date": "2026-11-01", "engine": "chatgpt", "prompt": "best dealer",
         "mentioned": "true", "position": "2", "cited": "true",
         "cited_urls": "https://a.example/x|https://a.example/y",
         "competitors": 'Hill Motors|Bob\'s "Best"|back\\slash', "sentiment": "-0.86"},
        {"dealer_id": DEALER, "date": TODAY.isoformat(), "engine": "ai_overviews",
         "prompt": "Škoda near me", "mentioned": "FALSE", "position": None, "cited": "0",
         "cited_urls": None, "competitors": None, "sentiment": None},
    ]  # fmt: skip
    fast = FastCells()
    for cells in plain:
        staged = fast.staged(7, cells)
        assert staged is not None, cells
        assert staged == by_model(cells)


def test_columns_left_out_of_the_header_are_absent_not_blank() -> None:
    cells = {"dealer_id": DEALER, "date": "2026-11-01", "engine": "gemini", "prompt": "p",
             "mentioned": "true", "cited": "false"}  # fmt: skip
    staged = FastCells().staged(7, cells)
    assert staged == by_model(cells) == (7, DEALER, "2026-11-01", "gemini", "p", "t", None,
                                         "f", "{}", "{}", None)  # fmt: skip
