"""`aoer signals import` as a person uses it: files from spreadsheets, every bad row at once."""

from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from aoer.constants import SIGNAL_COLUMNS
from tests.acceptance.conftest import AoerCli
from tests.acceptance.test_cli import HEADER, count

GOOD = "{tenant},2026-11-{day:02d},50,60,70,80,40,65,120\n"


@pytest.fixture
def tenant(aoer: AoerCli) -> str:
    tenant = str(uuid4())
    added = aoer("tenants", "add", "Bayview Toyota", "--id", tenant)
    assert added.returncode == 0, added.stderr
    return tenant


def test_every_bad_row_is_reported_at_once_with_file_line_and_column(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    stranger = str(uuid4())
    lines = [
        GOOD.format(tenant=tenant, day=1),  # line 2
        f"{tenant},2026-11-02,50,160,70,80,40,65,120\n",  # 3: aeo out of range
        "xyz,2026-11-03,1,1,1,1,1,1,1\n",  # 4: malformed dealer id
        f"{tenant},2026-11-04,50,60\n",  # 5: short row
        f"{tenant},2026-11-05,50,60,70,80,40,65,120,9\n",  # 6: long row
        f"{tenant},1999-12-31,1,1,1,1,1,1,1\n",  # 7: before the date floor
        GOOD.format(tenant=stranger, day=7),  # 8: unknown dealer
        GOOD.format(tenant=tenant, day=1),  # 9: the same day as line 2
        f"{tenant},0001-01-01,1,1,1,1,1,1,1\n",  # 10: year 1
        f"{tenant},12/06/2026,1,1,1,1,1,1,1\n",  # 11: a date as a spreadsheet shows it
        f"{tenant},2026-11-06,lots,1,1,1,1,1,1\n",  # 12: not a number (seo)
    ]
    csv = tmp_path / "signals.csv"
    csv.write_text(HEADER + "".join(lines))

    result = aoer("signals", "import", str(csv))

    assert result.returncode == 1, result.stdout
    expected = [
        f"{csv}:3: column aeo: ",
        f"{csv}:4: column dealer_id: ",
        f"{csv}:5: column geo: ",
        f"{csv}:6: ",
        f"{csv}:7: column date: ",
        f"{csv}:8: column dealer_id: unknown tenant {stranger}",
        f"{csv}:9: column date: duplicates line 2",
        f"{csv}:10: column date: ",
        f"{csv}:11: column date: ",
        f"{csv}:12: column seo: ",
    ]
    reported = [line for line in result.stderr.splitlines() if line.startswith(f"{csv}:")]
    assert len(reported) == len(expected), result.stderr
    for line, start in zip(reported, expected, strict=True):
        assert line.startswith(start), (start, result.stderr)
    assert "before 2000-01-01" in reported[4]
    # The value that broke the rule, as the file has it.
    assert reported[0].endswith("column aeo: must be 0-100, at most 2 decimals (got '160')")
    assert reported[1].endswith("(got 'xyz')"), reported[1]
    # A cell of the wrong type in a spreadsheet user's words, not the validator's.
    assert reported[1].endswith(
        "column dealer_id: not a dealership id (a UUID, as `aoer tenants list` prints it)"
        " (got 'xyz')"
    )
    assert reported[8].endswith(
        "column date: not a date: write it as YYYY-MM-DD (got '12/06/2026')"
    )
    assert reported[9].endswith("column seo: not a number (got 'lots')")
    assert "Input should be" not in result.stderr
    assert "dealerId" not in result.stderr
    assert f"error: {csv}: 10 problems on 10 lines; nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 0
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 0


def test_a_file_saved_by_excel_with_a_byte_order_mark_imports(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    csv = tmp_path / "excel.csv"
    body = HEADER + GOOD.format(tenant=tenant, day=1) + GOOD.format(tenant=tenant, day=2)
    csv.write_bytes(body.replace("\n", "\r\n").encode("utf-8-sig"))

    result = aoer("signals", "import", str(csv), "--no-enqueue")

    assert result.returncode == 0, result.stderr
    assert "imported 2 rows for 1 tenant" in result.stdout
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 2


def test_the_import_says_how_many_tenants_it_queued_and_which_it_could_not(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    """An inactive dealership's rows are written but it is not recomputed: the import said
    nothing of that, nor of queueing at all."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO tenants (name, active) VALUES ('Closed Motors', false) RETURNING id"
        ).fetchone()
    assert row is not None
    closed = str(row[0])
    csv = tmp_path / "two.csv"
    csv.write_text(HEADER + GOOD.format(tenant=tenant, day=1) + GOOD.format(tenant=closed, day=1))

    result = aoer("signals", "import", str(csv))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "imported 2 rows for 2 tenants",
        "queued 1 tenant for recompute (1 inactive: not recomputed)",
    ]


def test_a_wrong_encoding_is_named_with_its_line(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    good = GOOD.format(tenant=tenant, day=1)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + good + good.replace(",50,", ",5é,")).encode("latin-1"))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes((HEADER + good).encode("utf-16"))

    for csv, where, words in (
        (latin1, f"{latin1}:3: column seo: ", "byte 0xe9 is not UTF-8"),
        (utf16, f"{utf16}:1: ", "UTF-16"),
    ):
        result = aoer("signals", "import", str(csv))
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr, result.stderr
        assert where in result.stderr, result.stderr
        assert words in result.stderr, result.stderr
        assert "save the file as UTF-8" in result.stderr, result.stderr
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 0


def test_header_problems_are_reported_on_line_1_by_column(
    aoer: AoerCli, tmp_path: Path, tenant: str
) -> None:
    csv = tmp_path / "header.csv"
    csv.write_text("dealer,date,colour\n" + f"{tenant},2026-11-01,red\n")

    result = aoer("signals", "import", str(csv))

    assert result.returncode == 1
    assert f"{csv}:1: column dealer: unknown column" in result.stderr
    assert f"{csv}:1: column colour: unknown column" in result.stderr
    assert f"{csv}:1: column dealer_id: missing" in result.stderr


def test_the_printout_is_capped_with_a_count(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    csv = tmp_path / "many.csv"
    csv.write_text(HEADER + f"{tenant},2026-11-01,500,,,,,,\n" * 1200)

    result = aoer("signals", "import", str(csv))

    assert result.returncode == 1
    assert result.stderr.count(": column seo: ") == 1000
    assert "and 200 more" in result.stderr
    assert "1200 problems on 1200 lines" in result.stderr
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 0


def test_help_lists_the_columns_which_are_required_and_their_ranges(aoer: AoerCli) -> None:
    result = aoer("signals", "import", "--help")

    assert result.returncode == 0, result.stderr
    for column in SIGNAL_COLUMNS:
        assert column in result.stdout, column
    assert "required" in result.stdout
    assert "2000-01-01" in result.stdout
    assert "0-100" in result.stdout
    assert "UTF-8" in result.stdout
    assert "line 1" in result.stdout
