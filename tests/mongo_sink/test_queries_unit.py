"""Query filters: typed values are literals, never operators."""

from __future__ import annotations

import datetime as dt

import pytest

from mongo_sink.queries import QueryError, alert_filter, eq, parse_user_time, time_range

INJECTION = '{"$ne": null}'


def test_user_value_is_matched_literally_even_when_it_looks_like_an_operator() -> None:
    assert alert_filter(user=INJECTION) == {"user_id": {"$eq": INJECTION}}


def test_every_typed_value_is_wrapped_in_eq_as_a_string() -> None:
    flt = alert_filter(user="u_1", card_last4="1111", rule="velocity", severity="high")
    assert flt == {
        "$and": [
            {"user_id": {"$eq": "u_1"}},
            {"card_last4": {"$eq": "1111"}},
            {"rule": {"$eq": "VELOCITY"}},
            {"severity": {"$eq": "HIGH"}},
        ]
    }


def test_alert_id_matches_the_stored_id_literally() -> None:
    assert alert_filter(alert_id="9f86d081") == {"_id": {"$eq": "9f86d081"}}
    assert alert_filter(alert_id=INJECTION, rule="velocity") == {
        "$and": [{"_id": {"$eq": INJECTION}}, {"rule": {"$eq": "VELOCITY"}}]
    }


def test_non_string_values_are_stringified_not_interpreted() -> None:
    assert eq("user_id", {"$gt": ""}) == {"user_id": {"$eq": "{'$gt': ''}"}}


def test_severity_list_and_half_open_time_range() -> None:
    since = dt.datetime(2026, 11, 21, 22, tzinfo=dt.UTC)
    until = since + dt.timedelta(hours=1)
    flt = alert_filter(severity=["HIGH", "critical"], since=since, until=until)
    assert flt == {
        "$and": [
            {"severity": {"$in": ["HIGH", "CRITICAL"]}},
            {"event_time_dt": {"$gte": since, "$lt": until}},
        ]
    }


def test_no_filters_is_an_empty_filter() -> None:
    assert alert_filter() == {}
    assert time_range("x", None, None) == {}


def test_bad_user_time_is_a_clear_error() -> None:
    with pytest.raises(QueryError, match="--since"):
        parse_user_time("last tuesday", "--since")
    assert parse_user_time("2026-11-21T22:00:00Z", "--since") == dt.datetime(
        2026, 11, 21, 22, tzinfo=dt.UTC
    )
