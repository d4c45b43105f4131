"""Reading CSV files people save: every problem found at once, with its line and column."""

import csv
import io
import tracemalloc
from typing import Any

import pytest

from aoer.scoring.csvfile import Problem, Record, parse_csv, physical_lines, stream_csv

COLUMNS = ("dealer_id", "date", "seo", "aeo")
REQUIRED = ("dealer_id", "date")


def parse(text: str) -> tuple[list[Record], list[Problem]]:
    found = parse_csv(text.encode(), COLUMNS, REQUIRED)
    return found.records, found.problems


def test_records_carry_the_line_they_start_on_and_blank_cells_are_none() -> None:
    records, problems = parse('dealer_id,date,seo\r\n\r\nd1,2024-01-01, 5 \r\n"d2",2024-01-02,\r\n')
    assert problems == []
    assert records == [
        Record(3, {"dealer_id": "d1", "date": "2024-01-01", "seo": "5"}),
        Record(4, {"dealer_id": "d2", "date": "2024-01-02", "seo": None}),
    ]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column() -> None:
    found = parse_csv(b"\xef\xbb\xbfdealer_id,date\nd1,2024-01-01\n", COLUMNS, REQUIRED)
    assert found.problems == []
    assert found.columns == ["dealer_id", "date"]


def test_short_and_long_rows_are_each_reported_with_their_line() -> None:
    records, problems = parse("dealer_id,date,seo\nd1,2024-01-01\nd2\nd3,2024-01-03,1,2\nd4,x,1\n")
    assert [(p.line, p.column) for p in problems] == [(2, "seo"), (3, "date"), (4, None)]
    assert "2 cells, the header names 3 columns" in problems[0].message
    assert "4 cells, but the header names only 3 columns" in problems[2].message
    assert [r.line for r in records] == [5]


def test_every_line_that_is_not_utf8_is_named_with_its_column() -> None:
    data = "dealer_id,date,seo\nd1,2024-01-01,5é\nd2,2024-01-02,1\nd3,2024-01-03,ü\n"
    found = parse_csv(data.encode("latin-1"), COLUMNS, REQUIRED)
    assert [(p.line, p.column) for p in found.problems] == [(2, "seo"), (4, "seo")]
    assert found.problems[0].message.startswith("byte 0xe9 is not UTF-8")
    assert "save the file as UTF-8" in found.problems[0].message
    assert [r.line for r in found.records] == [3]


def test_utf16_files_are_named_with_or_without_a_byte_order_mark() -> None:
    text = "dealer_id,date\nd1,2024-01-01\n"
    with_mark = parse_csv(text.encode("utf-16"), COLUMNS, REQUIRED)
    assert [(p.line, p.column) for p in with_mark.problems] == [(1, None)]
    assert "UTF-16" in with_mark.problems[0].message
    without_mark = parse_csv(text.encode("utf-16-le"), COLUMNS, REQUIRED)
    assert [p.line for p in without_mark.problems] == [1]
    assert "NUL" in without_mark.problems[0].message
    assert with_mark.records == without_mark.records == []


def test_header_problems_are_all_reported_on_line_1() -> None:
    records, problems = parse("dealer,seo,seo,,colour\nd1,1,2,3,red\n")
    assert [(p.line, p.column) for p in problems] == [
        (1, "dealer"),
        (1, "seo"),
        (1, None),
        (1, "colour"),
        (1, "dealer_id"),
        (1, "date"),
    ]
    assert "the columns are dealer_id, date, seo, aeo" in problems[0].message
    assert problems[1].message == "named twice"
    assert problems[4].message == "missing (a required column)"
    assert records == []


def test_an_empty_file_asks_for_the_header() -> None:
    for text in ("", "\n\n"):
        _, problems = parse(text)
        assert [(p.line, p.column) for p in problems] == [(1, None)]
        assert "the first line must name the columns" in problems[0].message


def test_an_unclosed_quote_is_named_on_the_line_it_opens() -> None:
    records, problems = parse('dealer_id,date\nd1,"2024-01-01\nd2,2024-01-02\nd3,2024-01-03\n')
    assert [(p.line, p.column) for p in problems] == [(2, "date")]
    assert "closing quote" in problems[0].message
    assert records == []


@pytest.mark.parametrize(
    "text",
    [
        "a,b\r\n1,2\r\n",  # Windows
        "a,b\r1,2\r3,4",  # old Mac, no end at the end
        'a,b\n"x\r\ny",2\n\n3,"4\n"\n',  # quoted ends inside cells, a blank line
        "a,b\n\r\n\r1,2\n",
    ],
)
def test_lines_end_where_a_file_opened_with_newline_empty_ends_them(text: str) -> None:
    def rows_and_lines(reader: Any) -> list[tuple[list[str], int]]:
        return [(row, reader.line_num) for row in reader]

    expected = rows_and_lines(csv.reader(io.StringIO(text, newline="")))
    assert rows_and_lines(csv.reader(physical_lines(text))) == expected


def test_a_file_is_read_without_a_second_copy_of_its_text() -> None:
    line = "1,2026-11-01,chatgpt,Which dealership near Lakeside sells certified SUVs?,true\n"
    data = ("a,b,c,d,e\n" + line * 100_000).encode()
    tracemalloc.start()
    try:
        read = sum(1 for _ in stream_csv(data, ["a", "b", "c", "d", "e"], ["a"]).items)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == 100_000
    # The decoded text once (1 byte a character here) and one record at a time; an
    # `io.StringIO` of the text held it again at 4 bytes a character (~5x in all).
    assert peak < 1.5 * len(data), peak / len(data)


def test_a_spreadsheets_header_names_the_columns_whatever_its_case_and_spacing() -> None:
    """`Dealer ID,Date,SEO` (as a spreadsheet writes a header) was seven unknown columns."""
    records, problems = parse("Dealer ID,DATE,seo,AEO\nd1,2024-01-01,5,6\n")
    assert problems == []
    assert records == [Record(2, {"dealer_id": "d1", "date": "2024-01-01", "seo": "5", "aeo": "6"})]
    _, problems = parse("dealerId,date,Dealer-ID\nd1,2024-01-01,d1\n")
    assert [(p.column, p.message) for p in problems] == [("dealer_id", "named twice")]


def test_a_file_separated_by_semicolons_is_told_so_once() -> None:
    _, problems = parse("dealer_id;date;seo\nd1;2024-01-01;5\n")
    assert len(problems) == 1
    assert problems[0].message.startswith("the columns are separated by semicolons: save the")


def test_a_trailing_comma_is_named_as_the_likely_cause_of_a_nameless_column() -> None:
    _, problems = parse("dealer_id,date,seo,\nd1,2024-01-01,5,\n")
    assert [p.message for p in problems] == [
        "column 4 has no name (a comma at the end of the line?)"
    ]
