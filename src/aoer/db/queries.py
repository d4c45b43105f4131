"""Named SQL queries, loaded once from `sql/*.sql` and typed as literal strings.

A file holds blocks that start with `-- name: <query_name>`; comment lines right after the
header document the query. No query is ever assembled from user input: callers pass named
parameters.
"""

from functools import cache
from importlib import resources
from typing import LiteralString

_HEADER = "-- name:"


def parse_queries(text: str) -> dict[str, LiteralString]:
    """Split a `.sql` file into its named queries."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(_HEADER):
            name = line[len(_HEADER) :].strip()
            if not name or name in queries:
                raise ValueError(f"missing or duplicate query name in line {line!r}")
            current = queries[name] = []
        elif current is not None:
            current.append(line)
    return {name: "\n".join(body).strip() for name, body in queries.items()}


@cache
def _all_queries() -> dict[str, LiteralString]:
    found: dict[str, LiteralString] = {}
    for entry in resources.files("aoer.db.sql").iterdir():
        if entry.name.endswith(".sql"):
            for name, sql in parse_queries(entry.read_text(encoding="utf-8")).items():
                if name in found:
                    raise ValueError(f"query {name!r} is defined twice")
                found[name] = sql
    return found


def query(name: str) -> LiteralString:
    """The SQL text of the named query."""
    try:
        return _all_queries()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r}") from None
