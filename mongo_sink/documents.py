"""Pure decoding: a Kafka record of `fraud_alerts` or `window_stats` becomes a MongoDB document.

Nothing here talks to Kafka or MongoDB, so every rule is unit-tested directly.

Stored documents are the message as received plus a few derived fields that FerretDB v1.24
cannot compute at query time (it has no date operators, no `$substr`, no arithmetic in `$project`):

- `_id`: `alert_id` (alerts) or `stat_id` (window stats), the contract's stable ids.
- `<field>_dt`: a BSON datetime next to every ISO-8601 time field (`event_time`, `detected_at`,
  `window_start`, `window_end`), so range queries work whatever the string's precision.
- window stats only: `bucket_1m`, `bucket_5m`, `bucket_1h`, the window start floored to
  1 minute, 5 minutes and 1 hour (ISO strings), the keys of the roll-up aggregations.

The derivation is deterministic, so replaying a record rewrites exactly the same document.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from fraudctl.times import iso_ms_of, parse_time

Kind = Literal["alert", "window_stat"]

TIME_FIELDS = ("event_time", "detected_at", "window_start", "window_end")
# roll-up bucket field -> bucket width in seconds
BUCKETS: dict[str, int] = {"bucket_1m": 60, "bucket_5m": 300, "bucket_1h": 3600}
ID_FIELD: dict[Kind, str] = {"alert": "alert_id", "window_stat": "stat_id"}
MAX_ID_LEN = 512


class DecodeError(ValueError):
    """A record that cannot become a document; `reason` is a short code for dead letters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RecordRef:
    """Where a record came from: enough to derive an idempotent dead-letter id."""

    topic: str
    partition: int
    offset: int


def to_bson_time(value: dt.datetime) -> dt.datetime:
    """Truncate to milliseconds (BSON precision) so a re-read document compares equal."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def floor_bucket(value: dt.datetime, seconds: int) -> dt.datetime:
    """`value` floored to a multiple of `seconds` since the epoch (UTC)."""
    epoch = int(value.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def _document_id(kind: Kind, obj: dict[str, Any]) -> str:
    field = ID_FIELD[kind]
    value = obj.get(field)
    if value is None:
        raise DecodeError(f"missing_field:{field}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DecodeError(f"bad_id:{field}", f"{type(value).__name__} is not a string")
    text = str(value)
    if not text or len(text) > MAX_ID_LEN:
        raise DecodeError(f"bad_id:{field}", "empty or too long")
    return text


def _check_keys(obj: Any, depth: int = 0) -> None:
    """Field names MongoDB refuses ('$'-prefixed, containing NUL) make a record undecodable."""
    if depth > 50:
        raise DecodeError("too_deep")
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.startswith("$") or "\x00" in key:
                raise DecodeError("bad_field_name", key[:64])
            _check_keys(value, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _check_keys(value, depth + 1)


def decode(kind: Kind, value: bytes | None) -> dict[str, Any]:
    """The MongoDB document for one record value; raises DecodeError with a reason code."""
    if value is None:
        raise DecodeError("empty_value")
    try:
        obj = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError("not_json", f"not UTF-8: {exc}"[:200]) from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DecodeError("not_json", str(exc)[:200]) from exc
    if not isinstance(obj, dict):
        raise DecodeError("not_object", type(obj).__name__)
    doc_id = _document_id(kind, obj)
    _check_keys(obj)
    doc: dict[str, Any] = {"_id": doc_id}
    doc.update((k, v) for k, v in obj.items() if k != "_id")
    for field in TIME_FIELDS:
        parsed = parse_time(obj.get(field))
        if parsed is not None:
            doc[f"{field}_dt"] = to_bson_time(parsed)
    if kind == "window_stat":
        start = parse_time(obj.get("window_start"))
        if start is not None:
            for name, seconds in BUCKETS.items():
                doc[name] = iso_ms_of(floor_bucket(start, seconds))
    return doc


def dead_letter(ref: RecordRef, key: bytes | None, value: bytes | None, error: DecodeError) -> dict:
    """The `sink_dead_letters` document for a record that could not be decoded.

    `_id` = "<topic>|<partition>|<offset>", so consuming the record again rewrites the same one.
    The payload is kept as text when it is UTF-8, else as bytes.
    """

    def _raw(data: bytes | None) -> str | bytes | None:
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return bytes(data)

    return {
        "_id": f"{ref.topic}|{ref.partition}|{ref.offset}",
        "topic": ref.topic,
        "partition": ref.partition,
        "offset": ref.offset,
        "reason": error.reason,
        "detail": error.detail,
        "key": _raw(key),
        "payload": _raw(value),
    }
