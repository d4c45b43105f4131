"""`aoer observations import` as a person uses it: CSV or JSON Lines, every bad line at once,
all or none, signals derived and the tenant queued."""

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest

from aoer.scoring.observation_files import COLUMNS
from aoer.scoring.observations import INGEST_CHUNK_ROWS
from tests.acceptance.conftest import CLI_TIMEOUT_S, AoerCli, start_aoer
from tests.acceptance.test_cli import count

HEADER = "dealer_id,date,engine,prompt,mentioned,position,cited,cited_urls,competitors,sentiment\n"
DAY = (datetime.now(UTC).date() - timedelta(1)).isoformat()
# Imports waiting for an ingest lock (advisory class 15, db/sql/observations.sql).
WAITING_ON_INGEST_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 15 AND NOT granted"
)
GOOD = (
    "{tenant},{day},{engine},best ford dealer,true,2,true,"
    "https://lakeside.example/a|https://lakeside.example/b,Hill Motors|Bay Auto,0.5\n"
)


def rows(db_url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


@pytest.fixture
def tenant(aoer: AoerCli) -> str:
    tenant = str(uuid4())
    added = aoer("tenants", "add", "Lakeside Ford", "--id", tenant)
    assert added.returncode == 0, added.stderr
    return tenant


def test_an_inactive_dealerships_signals_are_derived_but_it_is_not_said_to_be_queued(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    """The import said every tenant it derived signals for was queued; an inactive one is
    not (review)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO tenants (name, active) VALUES ('Closed Kia', false) RETURNING id"
        ).fetchone()
    assert row is not None
    csv = tmp_path / "two.csv"
    lines = [GOOD.format(tenant=t, day=DAY, engine="chatgpt") for t in (tenant, row[0])]
    csv.write_text(HEADER + "".join(lines))

    result = aoer("observations", "import", str(csv))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "imported 2 observations for 2 tenants; signals derived for 2 tenants",
        "queued 1 tenant for recompute (1 inactive: not recomputed)",
    ]
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 1


def test_a_csv_imports_derives_signals_and_queues_the_tenant(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    csv = tmp_path / "observations.csv"
    lines = [GOOD.format(tenant=tenant, day=DAY, engine=e) for e in ("chatgpt", "gemini")]
    lines.append(f"{tenant},{DAY},claude,best ford dealer,false,,false,,,\n")
    csv.write_text(HEADER + "".join(lines))

    result = aoer("observations", "import", str(csv))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "imported 3 observations for 1 tenant; signals derived for 1 tenant",
        "queued 1 tenant for recompute",
    ]
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 3
    naming_bay = "SELECT count(*) FROM answer_observations WHERE 'Bay Auto' = ANY(competitors)"
    assert count(db_url, naming_bay) == 2
    # 2 of 3 answers mention and cite: aeo = geo = 66.67.
    derived = "SELECT count(*) FROM aiv_raw_signals WHERE aeo = 66.67 AND geo = 66.67"
    assert count(db_url, derived) == 1
    assert count(db_url, "SELECT count(*) FROM aoer_queue WHERE status = 'queued'") == 1
    again = aoer("observations", "import", str(csv))  # idempotent
    assert again.returncode == 0, again.stderr
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 3


def test_json_lines_import_by_name_or_content(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    row = {
        "dealerId": tenant,
        "date": DAY,
        "engine": "perplexity",
        "prompt": "ev service",
        "mentioned": True,
        "position": 1,
        "cited": True,
        "citedUrls": ["https://lakeside.example/ev"],
        "competitors": ["Bay Auto"],
        "sentiment": 0.25,
    }
    jsonl = tmp_path / "observations.jsonl"
    jsonl.write_text(json.dumps(row) + "\n\n" + json.dumps(row | {"engine": "copilot"}) + "\n")
    unnamed = tmp_path / "observations.txt"
    unnamed.write_text(json.dumps(row | {"engine": "gemini"}))

    for file, expected in ((jsonl, 2), (unnamed, 3)):
        result = aoer("observations", "import", str(file), "--no-derive-signals")
        assert result.returncode == 0, result.stderr
        assert count(db_url, "SELECT count(*) FROM answer_observations") == expected
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 0
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 0


def test_every_bad_csv_line_is_reported_at_once_and_nothing_is_written(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    stranger = str(uuid4())
    lines = [
        GOOD.format(tenant=tenant, day=DAY, engine="chatgpt"),  # 2
        GOOD.format(tenant=tenant, day=DAY, engine="Chat-GPT"),  # 3: engine
        f"{tenant},{DAY},gemini,q,true,0,false,,,\n",  # 4: position < 1
        f"{tenant},{DAY},gemini,q2,true,,false,,,1.5\n",  # 5: sentiment > 1
        f"{tenant},{DAY},gemini,q3,true,,true,ftp://lakeside.example/a,,\n",  # 6: not http(s)
        GOOD.format(tenant=stranger, day=DAY, engine="claude"),  # 7: unknown dealer
        GOOD.format(tenant=tenant, day=DAY, engine="chatgpt"),  # 8: repeats line 2
        f"{tenant},{DAY},gemini,q4,maybe,,false,,,\n",  # 9: not a boolean
        f"{tenant},{DAY},gemini,,true,,false,,,\n",  # 10: no prompt
    ]
    csv = tmp_path / "bad.csv"
    csv.write_text(HEADER + "".join(lines))

    result = aoer("observations", "import", str(csv))

    assert result.returncode == 1, result.stdout
    expected = [
        f"{csv}:3: column engine: ",
        f"{csv}:4: column position: ",
        f"{csv}:5: column sentiment: ",
        f"{csv}:6: column cited_urls: ",  # the column as the header names it (DESIGN §16)
        f"{csv}:7: column dealer_id: unknown tenant {stranger}",
        f"{csv}:8: column prompt: duplicates line 2",
        f"{csv}:9: column mentioned: ",
        f"{csv}:10: column prompt: a value is required",
    ]
    reported = [line for line in result.stderr.splitlines() if line.startswith(f"{csv}:")]
    assert len(reported) == len(expected), result.stderr
    for line, start in zip(reported, expected, strict=True):
        assert line.startswith(start), (start, result.stderr)
    assert "not an http(s) URL" in reported[3]
    assert f"error: {csv}: 8 problems on 8 lines; nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 0
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 0
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 0


def test_bad_json_lines_are_named_by_line_and_key(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    row = {"dealerId": tenant, "date": DAY, "engine": "claude", "prompt": "p",
           "mentioned": False, "cited": False}  # fmt: skip
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps(row),  # 1
                "{not json",  # 2
                json.dumps([row]),  # 3: not an object
                json.dumps(row | {"prompt": "q", "sentiment": -2}),  # 4
                json.dumps(row | {"prompt": "r", "dealer_id": tenant}),  # 5: snake key
            ]
        )
    )
    result = aoer("observations", "import", str(jsonl))
    assert result.returncode == 1, result.stdout
    for start in (f"{jsonl}:2: not valid JSON", f"{jsonl}:3: a JSON object is expected",
                  f"{jsonl}:4: column sentiment: ", f"{jsonl}:5: column dealer_id: "):  # fmt: skip
        assert start in result.stderr, result.stderr
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 0


def test_another_encoding_is_named_per_line_and_nothing_is_written(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    good = GOOD.format(tenant=tenant, day=DAY, engine="chatgpt")
    latin1 = tmp_path / "latin1.csv"
    bad = [
        good.replace("Bay Auto", f"Bay Auto {i} Señor").replace("chatgpt", f"e{i}")
        for i in range(2)
    ]
    latin1.write_bytes((HEADER + good + "".join(bad)).encode("latin-1"))
    utf16 = tmp_path / "utf16.csv"  # Excel's "Unicode text": UTF-16 with a byte order mark
    utf16.write_bytes((HEADER + good).encode("utf-16"))
    utf16_jsonl = tmp_path / "utf16.jsonl"
    utf16_jsonl.write_bytes(b'{"dealerId": "x"}\n'.decode().encode("utf-16"))

    for file, wheres, words in (
        (latin1, [f"{latin1}:3: column competitors: ", f"{latin1}:4: column competitors: "],
         "byte 0xf1 is not UTF-8"),
        (utf16, [f"{utf16}:1: "], "UTF-16"),
        (utf16_jsonl, [f"{utf16_jsonl}:1: "], "UTF-16"),
    ):  # fmt: skip
        result = aoer("observations", "import", str(file))
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr, result.stderr
        for where in wheres:
            assert where in result.stderr, result.stderr
        assert words in result.stderr, result.stderr
        assert "save the file as UTF-8" in result.stderr, result.stderr
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 0


def test_a_utf8_byte_order_mark_as_excel_writes_is_accepted(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    csv = tmp_path / "excel.csv"
    body = HEADER + GOOD.format(tenant=tenant, day=DAY, engine="gemini")
    csv.write_bytes(body.replace("\n", "\r\n").encode("utf-8-sig"))
    result = aoer("observations", "import", str(csv), "--no-derive-signals")
    assert result.returncode == 0, result.stderr
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 1


def test_help_names_every_column(aoer: AoerCli) -> None:
    result = aoer("observations", "import", "--help")
    assert result.returncode == 0, result.stderr
    for column in COLUMNS:
        assert column in result.stdout, column
    for words in ("required", "JSON Lines", "UTF-8", "line 1", "separated by |"):
        assert words in result.stdout, words


def test_quotes_backslashes_and_braces_reach_the_database_as_written(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    # Row 2 is plain (the fast path), row 3 spells its booleans `yes`/`no` (the model's path):
    # both must store the same awkward text exactly.
    names = ['Bob\'s "Best" Cars', "Back\\slash {Auto}", "Comma, Inc."]
    cell = '"' + "|".join(names).replace('"', '""') + '"'
    prompt = '"a ""quoted"" prompt, with\ttab \\N {x}"'
    csv = tmp_path / "awkward.csv"
    csv.write_text(
        HEADER
        + f"{tenant},{DAY},chatgpt,{prompt},true,1,false,,{cell},\n"
        + f"{tenant},{DAY},gemini,{prompt},yes,1,no,,{cell},\n"
    )

    result = aoer("observations", "import", str(csv))

    assert result.returncode == 0, result.stderr
    stored = rows(
        db_url, "SELECT engine, prompt, competitors FROM answer_observations ORDER BY engine"
    )
    expected_prompt = 'a "quoted" prompt, with\ttab \\N {x}'
    assert stored == [
        ("chatgpt", expected_prompt, names),
        ("gemini", expected_prompt, names),
    ]


def test_two_imports_locking_the_same_dealerships_in_crossed_order_both_land(
    aoer: AoerCli, db_url: str, tmp_path: Path
) -> None:
    """Each import merges a chunk at a time under its dealerships' ingest locks: A's first
    chunk is all X, B's all Y, and each second chunk needs W and the other's dealership. Held
    at W until both wait there, they deadlock; the one PostgreSQL stops is read and imported
    again, so both files land whole."""
    w, x, y = (UUID(int=n) for n in (1, 2, 3))  # a second chunk locks W first (sorted)
    for name, tenant in (("W", w), ("X", x), ("Y", y)):
        added = aoer("tenants", "add", f"Crossing {name}", "--id", str(tenant))
        assert added.returncode == 0, added.stderr

    def observations(name: str, first: UUID, then: UUID) -> Path:
        path = tmp_path / f"{name}.csv"
        with path.open("w") as out:
            out.write(HEADER)
            for i in range(INGEST_CHUNK_ROWS):
                out.write(f"{first},{DAY},chatgpt,prompt {i},true,1,false,,,\n")
            out.write(f"{w},{DAY},chatgpt,from {name},true,1,false,,,\n")
            out.write(f"{then},{DAY},gemini,from {name},true,1,false,,,\n")
        return path

    files = [observations("a", x, y), observations("b", y, x)]
    with psycopg.connect(db_url, autocommit=True) as held:
        with held.transaction():
            held.execute("SELECT pg_advisory_xact_lock(15, hashtext(%s))", (str(w),))
            imports = [
                start_aoer(db_url, tmp_path / f"{f.stem}.log", "observations", "import", str(f))
                for f in files
            ]
            deadline = time.monotonic() + CLI_TIMEOUT_S
            while count(db_url, WAITING_ON_INGEST_LOCKS) < 2:
                assert all(p.poll() is None for p in imports), "an import ended early"
                assert time.monotonic() < deadline, "the imports never both waited at W"
                time.sleep(0.05)
        exits = [p.wait(CLI_TIMEOUT_S) for p in imports]
    logs = [(tmp_path / f"{f.stem}.log").read_text() for f in files]
    assert exits == [0, 0], logs
    assert sum("importing again (attempt 2 of 3)" in log for log in logs) == 1, logs
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 2 * (INGEST_CHUNK_ROWS + 2)
    from_both = f"SELECT count(*) FROM answer_observations WHERE dealer_id = '{w}'"
    assert count(db_url, from_both) == 2


def test_an_import_an_operator_cancels_is_not_run_again(
    aoer: AoerCli, db_url: str, tmp_path: Path, tenant: str
) -> None:
    """Only a transaction PostgreSQL aborted to break a deadlock is imported again: a cancel
    (or a timeout) ends the import, nothing written."""
    csv = tmp_path / "observations.csv"
    csv.write_text(HEADER + GOOD.format(tenant=tenant, day=DAY, engine="chatgpt"))
    with psycopg.connect(db_url, autocommit=True) as held, held.transaction():
        held.execute("SELECT pg_advisory_xact_lock(15, hashtext(%s))", (tenant,))
        running = start_aoer(db_url, tmp_path / "import.log", "observations", "import", str(csv))
        deadline = time.monotonic() + CLI_TIMEOUT_S
        while count(db_url, WAITING_ON_INGEST_LOCKS) < 1:
            assert running.poll() is None, "the import ended early"
            assert time.monotonic() < deadline, "the import never waited"
            time.sleep(0.05)
        held.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND classid = 15 AND NOT granted"
        )
        exit_code = running.wait(CLI_TIMEOUT_S)
    log = (tmp_path / "import.log").read_text()
    assert exit_code == 1, log
    assert "canceling statement due to user request" in log
    assert "importing again" not in log
    assert count(db_url, "SELECT count(*) FROM answer_observations") == 0
