"""Observation files: format detection, CSV lists, JSON Lines problems by line."""

import json
from pathlib import Path
from uuid import uuid4

from aoer.scoring.csvfile import Problem, Record
from aoer.scoring.jsonlines import stream_jsonl
from aoer.scoring.observation_files import detect_format, parse_observations
from aoer.store.observations import OBSERVATION_COLUMNS

DEALER = str(uuid4())


def test_the_format_follows_the_name_else_the_first_character() -> None:
    assert detect_format(Path("a.CSV"), b"{") == "csv"
    assert detect_format(Path("a.ndjson"), b"dealer_id") == "jsonl"
    assert detect_format(Path("a.txt"), b"\xef\xbb\xbf \n{}") == "jsonl"
    assert detect_format(Path("a"), b"dealer_id,date") == "csv"


def test_json_lines_name_each_bad_line_and_skip_blank_ones() -> None:
    data = b'{"a": 1}\n\n[1]\n{oops\n"text"\n\xe9\n{"b": 2}'
    items = list(stream_jsonl(data).items)
    assert items[0] == Record(1, {"a": 1})
    assert [(p.line, p.message.split(",")[0]) for p in items[1:5] if isinstance(p, Problem)] == [
        (3, "a JSON object is expected"),
        (4, "not valid JSON at column 2: Expecting property name enclosed in double quotes"),
        (5, "a JSON object is expected"),
        (6, "byte 0xe9 is not UTF-8 (the file looks like Latin-1 or Windows-1252 text); save"
         " the file as UTF-8 (in Excel: CSV UTF-8)"),
    ]  # fmt: skip
    assert items[-1] == Record(7, {"b": 2})


def test_csv_lists_are_split_at_bars_and_blank_cells_left_out() -> None:
    csv = (
        "dealer_id,date,engine,prompt,mentioned,cited,cited_urls,competitors,position\n"
        f"{DEALER},2026-11-01,gemini,best dealer,yes,1,https://a.example/x | https://a.example/y"
        ",Hill Motors||Bay Auto,\n"
    )
    found = parse_observations(csv.encode(), "csv")
    [row] = list(found.rows)
    assert found.problems == []
    assert row[0] == 2  # the line
    staged = dict(zip(OBSERVATION_COLUMNS, row[1:], strict=True))
    assert staged["cited_urls"] == '{"https://a.example/x","https://a.example/y"}'
    assert staged["competitors"] == '{"Hill Motors","Bay Auto"}'
    assert (staged["mentioned"], staged["cited"], staged["position"]) == ("t", "t", None)


def test_json_lines_take_camel_case_keys_and_name_others_as_written() -> None:
    good = {"dealerId": DEALER, "date": "2026-11-01", "engine": "claude", "prompt": "p",
            "mentioned": False, "cited": False}  # fmt: skip
    data = "\n".join(json.dumps(r) for r in (good, good | {"engine": "Claude", "dealer_id": 1}))
    found = parse_observations(data.encode(), "jsonl")
    assert [row[0] for row in found.rows] == [1]
    assert sorted((e.row, e.field) for e in found.problems) == [(2, "dealer_id"), (2, "engine")]


def test_a_number_too_long_for_python_is_a_problem_of_its_line() -> None:
    data = b'{"a": 1}\n{"position": ' + b"9" * 5000 + b'}\n{"b": 2}\n'
    items = list(stream_jsonl(data).items)
    assert items[0] == Record(1, {"a": 1})
    assert items[1] == Problem(2, None, "not valid JSON: a number has more than 4300 digits")
    assert items[2] == Record(3, {"b": 2})
