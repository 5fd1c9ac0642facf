"""Decoding records into documents: ids, derived time fields, reasons for dead letters."""

from __future__ import annotations

import datetime as dt
import json

import bson
import pytest

from fraudctl.times import iso_ms_of
from mongo_sink.documents import (
    DecodeError,
    RecordRef,
    dead_letter,
    decode,
    floor_bucket,
    parse_time,
)

ALERT = {
    "alert_id": "a1b2",
    "rule": "VELOCITY",
    "severity": "HIGH",
    "entity_type": "card",
    "entity_id": "tok",
    "transaction_ids": ["t1", "t2"],
    "amount": 42.5,
    "score": None,
    "window_start": "2026-11-21T22:35:00.000Z",
    "window_end": "2026-11-21T22:40:00.000Z",
    "event_time": "2026-11-21T22:40:18.123Z",
    "detected_at": "2026-11-21T22:40:19.456Z",
    "details": {"count": 5, "threshold": 3},
}
STAT = {
    "stat_id": "global|ALL|2026-11-21T22:47:50.000Z",
    "granularity": "global",
    "group": "ALL",
    "window_start": "2026-11-21T22:47:50.000Z",
    "window_end": "2026-11-21T22:48:00.000Z",
    "txn_count": 3,
    "total_amount": 30.0,
}


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_alert_id_becomes_underscore_id_and_fields_are_kept() -> None:
    doc = decode("alert", json.dumps(ALERT).encode())
    assert doc["_id"] == "a1b2"
    assert {k: doc[k] for k in ALERT} == ALERT


def test_time_fields_get_bson_datetime_twins_at_millisecond_precision() -> None:
    doc = decode("alert", json.dumps(ALERT).encode())
    assert doc["event_time_dt"] == utc(2026, 11, 21, 22, 40, 18, 123000)
    assert doc["detected_at_dt"] == utc(2026, 11, 21, 22, 40, 19, 456000)
    assert doc["window_start_dt"] == utc(2026, 11, 21, 22, 35)


def test_window_stat_id_and_rollup_buckets() -> None:
    doc = decode("window_stat", json.dumps(STAT).encode())
    assert doc["_id"] == STAT["stat_id"]
    assert doc["bucket_1m"] == "2026-11-21T22:47:00.000Z"
    assert doc["bucket_5m"] == "2026-11-21T22:45:00.000Z"
    assert doc["bucket_1h"] == "2026-11-21T22:00:00.000Z"


def test_decoding_is_deterministic_byte_for_byte() -> None:
    raw = json.dumps(STAT).encode()
    assert bson.encode(decode("window_stat", raw)) == bson.encode(decode("window_stat", raw))


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("alert", b"not json", "not_json"),
        ("alert", b"\xff\xfe", "not_json"),
        ("alert", b"[1, 2]", "not_object"),
        ("alert", None, "empty_value"),
        ("alert", b'{"rule": "VELOCITY"}', "missing_field:alert_id"),
        ("alert", b'{"alert_id": null}', "missing_field:alert_id"),
        ("alert", b'{"alert_id": {"$gt": ""}}', "bad_id:alert_id"),
        ("alert", b'{"alert_id": ""}', "bad_id:alert_id"),
        ("window_stat", b'{"alert_id": "x"}', "missing_field:stat_id"),
        ("alert", b'{"alert_id": "x", "details": {"$where": 1}}', "bad_field_name"),
    ],
)
def test_undecodable_records_name_their_reason(kind: str, value: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(kind, value)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_dead_letter_id_is_topic_partition_offset_and_keeps_the_payload() -> None:
    ref = RecordRef("fraud_alerts", 1, 42)
    letter = dead_letter(ref, b"k", b"garbage", DecodeError("not_json", "x"))
    assert letter["_id"] == "fraud_alerts|1|42"
    assert (letter["payload"], letter["reason"], letter["key"]) == ("garbage", "not_json", "k")
    binary = dead_letter(ref, None, b"\xff", DecodeError("not_json"))
    assert binary["payload"] == b"\xff"
    assert binary["_id"] == letter["_id"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-21T22:40:18.123Z", utc(2026, 11, 21, 22, 40, 18, 123000)),
        ("2026-11-21T23:40:18+01:00", utc(2026, 11, 21, 22, 40, 18)),
        ("2026-11-21 22:40:18", utc(2026, 11, 21, 22, 40, 18)),
        (1795300000000, dt.datetime.fromtimestamp(1795300000, tz=dt.UTC)),
        ("yesterday", None),
        (True, None),
        (None, None),
    ],
)
def test_parse_time(value: object, expected: dt.datetime | None) -> None:
    assert parse_time(value) == expected


def test_iso_ms_and_floor_bucket() -> None:
    t = utc(2026, 11, 21, 22, 47, 59, 999999)
    assert iso_ms_of(t) == "2026-11-21T22:47:59.999Z"
    assert floor_bucket(t, 300) == utc(2026, 11, 21, 22, 45)
