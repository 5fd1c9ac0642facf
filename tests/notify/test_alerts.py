"""Decoding alerts and the severity filter (LOW < MEDIUM < HIGH < CRITICAL)."""

from __future__ import annotations

import json

import pytest

from notify.alerts import NotAnAlert, at_or_above, decode, severity_rank


@pytest.mark.parametrize(
    ("severity", "minimum", "sent"),
    [
        ("CRITICAL", "CRITICAL", True),
        ("HIGH", "CRITICAL", False),
        ("HIGH", "HIGH", True),
        ("CRITICAL", "HIGH", True),
        ("MEDIUM", "HIGH", False),
        ("LOW", "LOW", True),
        ("critical", "CRITICAL", True),  # case does not matter
        ("SEVERE", "LOW", False),  # unknown severities are never sent
        (None, "LOW", False),
    ],
)
def test_at_or_above(severity, minimum, sent) -> None:
    assert at_or_above({"severity": severity}, minimum) is sent


def test_severity_order() -> None:
    ranks = [severity_rank(s) for s in ("LOW", "MEDIUM", "HIGH", "CRITICAL")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
    assert severity_rank("nope") < severity_rank("LOW")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_value"),
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"rule": "VELOCITY"}', "bad_alert_id"),
        (b'{"alert_id": 7}', "bad_alert_id"),
        (b'{"alert_id": ""}', "bad_alert_id"),
    ],
)
def test_records_that_are_not_alerts(value, reason) -> None:
    with pytest.raises(NotAnAlert) as err:
        decode(value)
    assert err.value.reason == reason


def test_an_alert_decodes_as_is() -> None:
    alert = {"alert_id": "abc", "severity": "CRITICAL", "details": {"count": 5}}
    assert decode(json.dumps(alert).encode()) == alert
