"""A signal's value against its column (numeric(5,2): 0-100, at most 2 decimals), checked in
one step whatever the exponent it is written with."""

from decimal import Decimal

import pytest

from aoer.scoring.rows import DecimalWithin, error_message

PERCENT = DecimalWithin("0", "100", places=2, words="0-100, at most 2 decimals")


@pytest.mark.parametrize("text", ["0", "100", "100.00", "12.300", "0E-5", "1E+1", "99.99", "-0.00"])
def test_values_the_column_holds_are_taken_as_written(text: str) -> None:
    assert PERCENT(Decimal(text)) == Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "100.01",
        "-0.01",
        "145.555",  # read "no more than 5 digits in total" before the range
        "12.345",
        "1e999999999",  # normalize() overflowed: a traceback, not a row's error
        "1E+1000000",
        "1e-999999999",  # normalize() rounded it to 0: stored as 0.00
        "0.001",
    ],
)
def test_values_it_cannot_hold_are_refused_in_words(text: str) -> None:
    with pytest.raises(ValueError, match=r"^must be 0-100, at most 2 decimals$"):
        PERCENT(Decimal(text))


def test_none_is_no_value() -> None:
    assert PERCENT(None) is None


@pytest.mark.parametrize(
    ("msg", "value", "said"),
    [
        ("Value error, must be 0-100, at most 2 decimals", "-1",
         "must be 0-100, at most 2 decimals (got '-1')"),
        ("Input should be a valid decimal", "lots", "Input should be a valid decimal (got 'lots')"),
        ("Value error, 'ftp://x' is not an http(s) URL", "ftp://x",
         "'ftp://x' is not an http(s) URL"),  # quoted once, by the validator
        ("Value error, date 2030-01-01 is in the future", "2030-01-01",
         "date 2030-01-01 is in the future"),
    ],
)  # fmt: skip
def test_a_field_error_quotes_the_value_that_broke_it_once(msg: str, value: str, said: str) -> None:
    assert error_message({"type": "value_error", "msg": msg, "input": value}) == said
