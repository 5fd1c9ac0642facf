"""The contract's timestamp format, `2026-11-21T22:40:18.123Z` (UTC, milliseconds), written
from epoch milliseconds (the generator, the rules' versions) or from a datetime (MongoDB's),
and read back from whatever form a record holds."""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

_last_second: list[Any] = [None, ""]


def iso_ms(epoch_ms: int) -> str:
    """`epoch_ms` in the contract's format; the generator formats millions of these, so the
    second's text is kept for the next call."""
    sec, milli = divmod(epoch_ms, 1000)
    if _last_second[0] != sec:
        _last_second[0] = sec
        _last_second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_last_second[1]}.{milli:03d}Z"


def iso_ms_of(value: dt.datetime) -> str:
    """`value` in the contract's format (truncated to the millisecond)."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 string (`Z` or offset; naive means UTC) or epoch millis -> aware UTC datetime.

    Returns None for anything else (the field is then stored without its `_dt` twin).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        try:
            return dt.datetime.fromtimestamp(value / 1000.0, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
