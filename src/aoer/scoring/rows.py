"""Validating batches of rows (API bodies, import files): every bad field named at once.

The API names a row by its index in the body's list (from 0) and a field by its camelCase
name; an import names a row by the file's line (from 1) and a field by its column as the file
names it (snake_case). `Naming` carries that choice, so one validation serves both.
"""

import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from pydantic.alias_generators import to_snake

from aoer.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _decimals(value: Decimal) -> int:
    """How many decimals a finite value needs (12.300: 1; 1E-999999999: 999999999)."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(-exponent - trailing, 0)


class DecimalWithin:
    """An optional decimal from `low` to `high` with at most `places` decimals, checked in one
    step: a bad value is `must be <words>`, whichever bound it breaks. (Pydantic
    checks the digit count first, so 145.555 for a 0-100 field read "no more than 5 digits
    in total".) Not-a-number and infinities are refused before, as for every Decimal. Use it
    with `AfterValidator`, and `field()` for the description and the JSON schema's bounds."""

    def __init__(self, low: str, high: str, *, places: int, words: str) -> None:
        self.lowest, self.highest = Decimal(low), Decimal(high)
        self.places, self.words = places, words

    def __call__(self, value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        # Bounds first, then the decimals read off the digits (trailing zeros do not count:
        # 12.300 has one). Never `normalize()`: it overflows on 1e999999999 (a traceback, not
        # an error naming the row) and rounds 1e-999999999 to 0 (stored as 0.00).
        if not self.lowest <= value <= self.highest or _decimals(value) > self.places:
            raise ValueError(f"must be {self.words}")
        return value

    def field(self) -> Any:
        bounds: dict[str, Any] = {"minimum": float(self.lowest), "maximum": float(self.highest)}
        return Field(default=None, description=self.words, json_schema_extra=bounds)


def storable(text: str) -> str:
    """PostgreSQL text holds neither NUL nor lone UTF-16 surrogates: refuse them up front."""
    if UNSTORABLE.search(text):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return text


def as_sent_at_most(max_length: int) -> BeforeValidator:
    """A text's length limit applied to the text as sent, before surrounding white space is
    stripped: the published schema's maxLength is about what the client sends. Put it after
    the `StringConstraints` in `Annotated` (it still runs first): placed before them, pydantic
    strips but no longer checks `min_length`."""

    def check(value: object) -> object:
        if isinstance(value, str) and len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters (as sent)")
        return value

    return BeforeValidator(check)


@dataclass(frozen=True)
class Naming:
    """How errors name where they are: the API's row index and camelCase field, or a file's
    line and column (snake_case, as CSV headers name them)."""

    row: str
    by_column: bool

    def field(self, name: str) -> str:
        return to_snake(name) if self.by_column else name

    def where(self, row: int) -> str:
        return f"{self.row} {row}" + (" (counting from 0)" if self.row == "row" else "")


API_ROWS = Naming("row", by_column=False)  # `row` is the index in the body's list, from 0
FILE_LINES = Naming("line", by_column=True)  # lines of the file, from 1 (the header)


@dataclass(frozen=True)
class FieldError:
    row: int
    field: str
    message: str


class RowValidationError(InvalidInput):
    """Some rows are not valid; `errors` names each bad row and field."""

    def __init__(self, errors: list[FieldError], *, naming: Naming = API_ROWS) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        where = naming.where(first.row)
        label = "column" if naming.by_column else "field"
        super().__init__(f"{where}, {label} {first.field}: {first.message}{more}")
        self.errors = errors


MAX_ECHOED_INPUT = 80  # characters of a rejected value quoted back in a message


# A file's cell that is not of its column's type, in a spreadsheet user's words (pydantic's
# read "Input should be a valid date or datetime, invalid character in year").
CELL_WORDS: dict[str, str] = {
    "date_from_datetime_parsing": "not a date: write it as YYYY-MM-DD",
    "date_parsing": "not a date: write it as YYYY-MM-DD",
    "date_type": "not a date: write it as YYYY-MM-DD",
    "uuid_parsing": "not a dealership id (a UUID, as `aoer tenants list` prints it)",
    "uuid_type": "not a dealership id (a UUID, as `aoer tenants list` prints it)",
    "decimal_parsing": "not a number",
    "decimal_type": "not a number",
    "float_parsing": "not a number",
    "int_parsing": "not a whole number",
    "bool_parsing": "not true or false (true/false, yes/no, 1/0)",
}


def error_message(err: Mapping[str, Any], *, cell: bool = False) -> str:
    """A pydantic error's message as people read it: our validators' words without pydantic's
    "Value error, " before them, and the value that broke it when it is short (`Input should
    be a valid decimal (got 'lots')`). `cell`: a file's cell, whose type errors are said in
    CELL_WORDS (`not a number (got 'lots')`)."""
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if cell:
        message = CELL_WORDS.get(str(err.get("type")), message)
    value = err.get("input")
    quotable = isinstance(value, str | int | float) and len(str(value)) <= MAX_ECHOED_INPUT
    if err.get("type") != "missing" and quotable and not _quoted(value, message):
        message += f" (got {value!r})"
    return message


def _quoted(value: object, message: str) -> bool:
    """Whether a validator's own words name this text already ("'ftp://x' is not an http(s)
    URL", "date 2030-01-01 is in the future"), as a word of its own."""
    if not isinstance(value, str) or not value.strip():
        return False
    return re.search(rf"(?<![\w.-]){re.escape(value.strip())}(?![\w.-])", message) is not None


def field_errors(number: int, exc: ValidationError, naming: Naming) -> list[FieldError]:
    """One error per bad field of row `number`, named as `naming` says: the API's path into
    the body (`citedUrls.1`), or a file's column as its header names it (DESIGN §16:
    `cited_urls`, the message quoting the bad item)."""
    found = []
    for err in exc.errors():
        loc = err["loc"][:1] if naming.by_column else err["loc"]
        field = ".".join(naming.field(str(p)) for p in loc) or "row"
        message = error_message(err, cell=naming.by_column)
        if naming.by_column and err["type"] == "missing":
            message = "a value is required"
        found.append(FieldError(number, field, message))
    return found


class RowChecker(Generic[M]):
    """Rows validated one at a time (a file is never held as models): each valid row, or
    None with its errors added to `errors`. Two rows with the same `key` are one row sent
    twice: the second is an error naming the first (`same` says what they share, e.g. "same
    dealer and date"), on `duplicate_field`."""

    def __init__(
        self,
        model: type[M],
        *,
        key: Callable[[M], Hashable],
        same: str,
        duplicate_field: str = "date",
        naming: Naming = API_ROWS,
    ) -> None:
        self.model = model
        self.key = key
        self.same = same
        self.duplicate_field = duplicate_field
        self.naming = naming
        self.errors: list[FieldError] = []
        self._seen: dict[Hashable, int] = {}

    def check(self, number: int, raw: Mapping[str, Any]) -> M | None:
        try:
            row = self.model.model_validate(raw)
        except ValidationError as exc:
            self.errors.extend(field_errors(number, exc, self.naming))
            return None
        found = self.key(row)
        if found in self._seen:
            message = f"duplicates {self.naming.row} {self._seen[found]} ({self.same})"
            self.errors.append(FieldError(number, self.naming.field(self.duplicate_field), message))
            return None
        self._seen[found] = number
        return row
