"""Every SQL escaping filter: what it renders and what it refuses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.sql.filters import (
    SqlFilterError,
    flink_duration,
    sql_decimal,
    sql_ident,
    sql_interval,
    sql_number,
    sql_string,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("transactions", "'transactions'"),
        ("it's", "'it''s'"),
        ("x'); DROP TABLE t; --", "'x''); DROP TABLE t; --'"),
        (42, "'42'"),
        ("", "''"),
    ],
)
def test_sql_string_quotes_and_doubles_single_quotes(value, expected):
    assert sql_string(value) == expected


@pytest.mark.parametrize("value", ["a\nb", "tab\there", "nul\x00", "\x7f", None, True, [1], {}])
def test_sql_string_refuses_control_characters_and_non_scalars(value):
    with pytest.raises(SqlFilterError):
        sql_string(value)


@pytest.mark.parametrize(("value", "expected"), [("alerts_velocity", "`alerts_velocity`")])
def test_sql_ident_backtick_quotes_valid_identifiers(value, expected):
    assert sql_ident(value) == expected


@pytest.mark.parametrize(
    "value", ["1abc", "a-b", "a`b", "a b", "", "x; DROP TABLE t", "a" * 129, 5, None]
)
def test_sql_ident_refuses_anything_but_plain_identifiers(value):
    with pytest.raises(SqlFilterError):
        sql_ident(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5 min", "INTERVAL '5' MINUTE"),
        ("10 s", "INTERVAL '10' SECOND"),
        ("10s", "INTERVAL '10' SECOND"),
        ("1 h", "INTERVAL '1' HOUR"),
        ("2 d", "INTERVAL '2' DAY"),
        ("1500 ms", "INTERVAL '1.500' SECOND(9, 3)"),
        ("150 s", "INTERVAL '150' SECOND(3)"),
        ("1440 min", "INTERVAL '1440' MINUTE(4)"),
    ],
)
def test_sql_interval_renders_flink_intervals(value, expected):
    assert sql_interval(value) == expected


@pytest.mark.parametrize(
    "value", ["1' SECOND; DROP TABLE t; --", "5 minutes", "-5 s", "5", "s", "", None, 5]
)
def test_sql_interval_refuses_anything_but_a_duration(value):
    with pytest.raises(SqlFilterError):
        sql_interval(value)


def test_flink_duration_normalises_spacing_and_refuses_junk():
    assert flink_duration("10s") == "10 s"
    with pytest.raises(SqlFilterError):
        flink_duration("10 s'")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, "3"), (0.8, "0.8"), (Decimal("500.00"), "500.00"), (Decimal("2"), "2.0"), (-1, "-1")],
)
def test_sql_number_renders_numeric_literals(value, expected):
    assert sql_number(value) == expected


@pytest.mark.parametrize(
    "value", [True, float("nan"), float("inf"), Decimal("NaN"), "1; DROP", "3", None]
)
def test_sql_number_refuses_non_numbers_and_non_finite(value):
    with pytest.raises(SqlFilterError):
        sql_number(value)


def test_sql_decimal_keeps_money_exact_and_refuses_floats():
    assert sql_decimal(Decimal("500.00")) == "500.00"
    assert sql_decimal(3) == "3.0"
    with pytest.raises(SqlFilterError):
        sql_decimal(0.1)
