"""Pure: a `fraud_alerts` record becomes an alert dict, and the severity filter."""

from __future__ import annotations

import json
from typing import Any

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
MAX_ALERT_ID_LEN = 256


class NotAnAlert(ValueError):
    """A record that cannot be notified about; `reason` is a short code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(value: bytes | None) -> dict[str, Any]:
    """The alert in a record value; raises NotAnAlert (not JSON, not an object, no alert_id)."""
    if value is None:
        raise NotAnAlert("empty_value")
    try:
        obj = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise NotAnAlert("not_json") from exc
    if not isinstance(obj, dict):
        raise NotAnAlert("not_object")
    alert_id = obj.get("alert_id")
    if not isinstance(alert_id, str) or not alert_id or len(alert_id) > MAX_ALERT_ID_LEN:
        raise NotAnAlert("bad_alert_id")
    return obj


def severity_rank(severity: Any) -> int:
    """LOW 0 < MEDIUM 1 < HIGH 2 < CRITICAL 3; an unknown severity ranks below LOW (-1)."""
    return RANK.get(str(severity).upper(), -1) if severity is not None else -1


def at_or_above(alert: dict[str, Any], min_severity: str) -> bool:
    """Whether `alert` is severe enough to be sent (an unknown severity never is)."""
    rank = severity_rank(alert.get("severity"))
    return rank >= 0 and rank >= RANK[min_severity]
