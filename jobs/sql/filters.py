"""Jinja filters that turn validated config values into SQL literals and identifiers.

Config validation (config/validators.py) refuses bad values first; these filters validate again
and raise `SqlFilterError` instead of emitting anything suspicious, so a template can never
render an injection even if it is handed an unvalidated value.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from jinja2 import Undefined

from config.validators import _DURATION_RE

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Flink interval units for each config duration unit (INTERVAL 'n' UNIT).
_INTERVAL_UNITS = {"ms": None, "s": "SECOND", "min": "MINUTE", "h": "HOUR", "d": "DAY"}
_FLINK_DURATION_UNITS = {"ms": "ms", "s": "s", "min": "min", "h": "h", "d": "d"}


class SqlFilterError(ValueError):
    """A value cannot be rendered safely into SQL."""


def sql_string(value: Any) -> str:
    """A single-quoted SQL string literal; quotes are doubled, control characters refused."""
    if value is None:
        raise SqlFilterError("sql_string: None cannot be rendered as a string literal")
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise SqlFilterError(f"sql_string: refusing a {type(value).__name__} value")
    text = str(value)
    if _CONTROL_RE.search(text):
        raise SqlFilterError(f"sql_string: control characters are not allowed in {text!r}")
    return "'" + text.replace("'", "''") + "'"


def sql_ident(value: Any) -> str:
    """A backtick-quoted identifier; only letters, digits and '_' (not starting with a digit)."""
    if not isinstance(value, str) or not _IDENT_RE.fullmatch(value):
        raise SqlFilterError(
            f"sql_ident: {value!r} is not an identifier (letters, digits, '_'; no leading digit)"
        )
    return f"`{value}`"


def _parse_duration(value: Any) -> tuple[int, str]:
    if not isinstance(value, str):
        raise SqlFilterError(f"duration: {value!r} is not a duration string")
    m = _DURATION_RE.fullmatch(value.strip())
    if not m:
        raise SqlFilterError(
            f"duration: {value!r} is not a duration such as '10 s' or '5 min' "
            "(units ms, s, min, h, d)"
        )
    return int(m.group(1)), m.group(2)


def sql_interval(value: Any) -> str:
    """`INTERVAL 'n' UNIT` from a validated duration such as '5 min' ('ms' becomes seconds).

    A value of three or more digits names its precision: SQL's default of 2 digits refuses
    `INTERVAL '150' SECOND`."""
    n, unit = _parse_duration(value)
    sql_unit = _INTERVAL_UNITS[unit]
    if sql_unit is None:  # milliseconds: Flink's INTERVAL SECOND takes a fraction
        return f"INTERVAL '{n // 1000}.{n % 1000:03d}' SECOND(9, 3)"
    precision = f"({len(str(n))})" if n >= 100 else ""
    return f"INTERVAL '{n}' {sql_unit}{precision}"


def flink_duration(value: Any) -> str:
    """A Flink configuration duration string ('10 s'), re-validated, for SET values."""
    n, unit = _parse_duration(value)
    return f"{n} {_FLINK_DURATION_UNITS[unit]}"


def sql_number(value: Any) -> str:
    """A numeric literal (int, float or Decimal); booleans, NaN, infinities and text refused."""
    if isinstance(value, bool):
        raise SqlFilterError("sql_number: booleans are not numbers")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SqlFilterError(f"sql_number: {value!r} is not finite")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise SqlFilterError(f"sql_number: {value!r} is not finite")
        text = format(value, "f")
        return text if "." in text else text + ".0"
    raise SqlFilterError(f"sql_number: {value!r} ({type(value).__name__}) is not a number")


def sql_decimal(value: Any) -> str:
    """An exact DECIMAL literal (for money thresholds compared with DECIMAL amounts)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise SqlFilterError(f"sql_decimal: {value!r} is not an int or Decimal")
    return sql_number(Decimal(value))


def _strict(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    """Make an undefined template value fail with Jinja's own UndefinedError (its name)."""

    @functools.wraps(fn)
    def wrapper(value: Any) -> str:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return fn(value)

    return wrapper


FILTERS = {
    name: _strict(fn)
    for name, fn in {
        "sql_string": sql_string,
        "sql_ident": sql_ident,
        "sql_interval": sql_interval,
        "sql_number": sql_number,
        "sql_decimal": sql_decimal,
        "flink_duration": flink_duration,
    }.items()
}
