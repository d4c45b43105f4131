"""`aoer signals import` reads its file once, line by line, into the database's COPY."""

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from aoer.cli.signals import _SignalFile


def test_a_file_is_read_a_line_at_a_time_not_held_as_rows(tmp_path: Path) -> None:
    """A 90-day backfill of 10,000 dealerships is 900,000 lines: held as records and models
    it took ~38 bytes of memory for each byte of the file (~2.6 GB); read a line at a time
    into the COPY, the file's bytes, its text and one key a row."""
    dealers = [str(uuid4()) for _ in range(500)]
    today = datetime.now(UTC).date()
    lines = ["dealer_id,date,seo,aeo,geo,ugc"] + [
        f"{dealers[i % 500]},{today - timedelta(days=i // 500)},55.50,61.25,40,72"
        for i in range(50_000)
    ]
    path = tmp_path / "backfill.csv"
    path.write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        found = _SignalFile(path)
        read = sum(1 for _ in found.rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (read, found.checker.errors, found.problems) == (50_000, [], [])
    assert len(found.tenant_ids) == 500
    assert peak < 6 * path.stat().st_size, peak / path.stat().st_size
