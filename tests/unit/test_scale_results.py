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
