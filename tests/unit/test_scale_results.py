"""`make bench-scale` adds its run to bench/results-scale.md instead of replacing the file:
the earlier runs, and what was written about them, stay."""

import sys

from tests.conftest import REPO


def test_a_new_run_goes_first_and_the_earlier_ones_stay() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from scale import add_run

    earlier = "# Scale benchmark results\n\n## Run 1\n\nRead: notes on run 1.\n"
    new = "# Scale benchmark (1,000,000 tenants)\n\n| table |\n"
    assert add_run(earlier, new) == (
        "# Scale benchmark results\n\n"
        "## Scale benchmark (1,000,000 tenants)\n\n| table |\n\n"
        "## Run 1\n\nRead: notes on run 1.\n"
    )


def test_each_verdict_rests_on_the_rounds_medians_and_lists_every_round() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from scale import Size, parse_args, render

    def size(tenants: int, floor: list[float], system: list[float], api: list[float]) -> Size:
        s = Size(tenants, signal_rows=10, signal_bytes=2_000, database_bytes=2**30)
        s.floor_s, s.system_s = floor, system
        s.tick_ms = s.first_chunk_ms = s.first_batch_ms = [100.0]
        s.urgent_ms = [30.0, 40.0]
        s.api_idle_p99s = [10.0, 12.0, 8.0][: len(api)]
        s.api_refresh_p99s = api
        s.api_cores = [(1.0, 0.9)] * len(api)
        s.api_overlaps = [5_000 + 1_000 * n for n in range(len(api))]
        return s

    # One round of three misses the refresh's target (1.40 the floor); the API's p99 rounds
    # are each idle window's against the refresh window after it.
    large = size(1_000_000, [40.0, 40.0, 40.0], [48.0, 56.0, 47.0], [15.0, 21.0, 14.0])
    small = size(100_000, [4.0, 4.0, 4.0], [4.4, 4.4, 4.4], [12.0, 12.0, 12.0])
    text = render(large, small, parse_args(["--repeats", "3"]), "0.1 before, 1.0 after")

    assert "| 1,000,000 | 40.00 | 48.00 | 1.20× |" in text
    assert "| 10.0 / 15.0 |" in text  # the medians of the idle and refresh p99s
    assert "system / floor at 1,000,000: 1.20 (rounds: 1.20, 1.40, 1.18) → meets" in text
    assert "idle: 1.75 (rounds: 1.50, 1.75, 1.75) → meets" in text
    assert "(5,000–7,000 of 1,000,000 summaries committed in the window;" in text
    assert "time(1,000,000) / time(100,000): floor 10.00, system 10.91 → meets" in text
    assert "1,000,000: 40.00 / 48.00, 40.00 / 56.00, 40.00 / 47.00; 100,000: 4.00 / 4.40" in text
    # Medians on the other side of the targets fail the verdicts.
    large.system_s = [48.0, 56.0, 52.0]
    large.api_refresh_p99s = [25.0, 21.0, 18.0]
    text = render(large, small, parse_args(["--repeats", "3"]), "")
    assert "system / floor at 1,000,000: 1.30 (rounds: 1.20, 1.40, 1.30) → MISSES" in text
    assert "idle: 2.25 (rounds: 2.50, 1.75, 2.25) → MISSES" in text
