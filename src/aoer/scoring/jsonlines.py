"""Reading a JSON Lines file (one JSON object per line) lazily, every problem with its line.

Like `csvfile`: lines count from 1, blank lines are skipped, a file that is not UTF-8 is
named as such (a UTF-8 byte order mark is accepted, as there), and nothing stops at the first
problem. A record's keys are the file's own, so errors can name them as written.
"""

import codecs
import json
import sys
from collections.abc import Iterator

from aoer.scoring.csvfile import SAVE_AS_UTF8, Problem, Record, RecordStream, bad_bytes, not_utf8


def stream_jsonl(data: bytes) -> RecordStream:
    problem = not_utf8(data)
    if problem is not None:
        return RecordStream([], [problem], iter(()))
    text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    return RecordStream([], [], _records(text))


def _records(text: str) -> Iterator[Record | Problem]:
    for line, raw in enumerate(_lines(text), start=1):
        if not raw.strip():
            continue
        bad = bad_bytes(raw)
        if bad:
            yield Problem(line, None, f"{bad}; {SAVE_AS_UTF8}")
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield Problem(line, None, f"not valid JSON at column {exc.colno}: {exc.msg}")
            continue
        except ValueError:  # the only other failure: an integer past Python's digit limit
            digits = sys.get_int_max_str_digits()
            yield Problem(line, None, f"not valid JSON: a number has more than {digits} digits")
            continue
        if not isinstance(value, dict):
            yield Problem(line, None, f"a JSON object is expected, not {_kind(value)}")
            continue
        yield Record(line, value)


def _lines(text: str) -> Iterator[str]:
    """`text.split("\\n")`, one line at a time (no list of a million lines at once)."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return (
        "a number"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else ("a boolean")
    )
