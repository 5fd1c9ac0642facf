"""Analytics queries over `alerts` and `window_stats`, identical on FerretDB v1.24 and MongoDB 7/8.

Portability rules, each checked against a real FerretDB 1.24 (SQLite backend):

- Works on both: `$match` (`$eq`, `$in`, `$gte`/`$lt` on strings and datetimes), `$group` with
  `$sum` (of 1 or of a field) and `$count`, compound `$group` keys, `$sort`, `$limit`,
  `$unwind`, `find` with sort/limit, `count_documents`, indexes.
- FerretDB lacks: `$avg`/`$min`/`$max`/`$first`/`$push`/`$addToSet` accumulators, `$divide`,
  `$multiply`, `$subtract`, `$mod`, `$cond`, `$concat`, `$substr`, every date operator,
  `$facet`, `$sortByCount`; `$project`/`$addFields` do not evaluate field paths.
- FerretDB bug: a `$group` with *several* accumulators fills only the first one (the others
  come back as 0). So every aggregation here has exactly one accumulator, and metrics are
  merged in Python.

Hence: minimum, maximum and average are computed in Python; roll-ups group on bucket keys the
sink stores with each window (`bucket_1m`, `bucket_5m`, `bucket_1h`) instead of date math.

Values a user types never become operators: every filter is `{field: {"$eq": <str>}}` (or
`$in` of strings) built here, so `--user '{"$ne": null}'` matches a user literally named that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pymongo.database import Database

from config import Settings
from fraudctl.times import iso_ms_of
from mongo_sink.documents import BUCKETS, TIME_FIELDS, parse_time

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
HIGH_SEVERITIES = ("HIGH", "CRITICAL")
GRANULARITIES = {"global": "global", "category": "merchant_category"}
BUCKET_FIELDS = {"1m": "bucket_1m", "5m": "bucket_5m", "1h": "bucket_1h"}
TopWhat = Literal["cards", "users", "devices", "categories"]
TopBy = Literal["alerts", "amount", "transactions"]
# fields of an alert as the contract defines them (derived *_dt fields are left out of output)
ALERT_FIELDS = (
    "alert_id",
    "rule",
    "severity",
    "entity_type",
    "entity_id",
    "user_id",
    "card_last4",
    "card_token",
    "transaction_ids",
    "amount",
    "score",
    "window_start",
    "window_end",
    "event_time",
    "detected_at",
    "details",
    "rule_version",
)


class QueryError(ValueError):
    """A bad query argument (e.g. an unparseable time); the CLI prints it and exits 2."""


def eq(field: str, value: Any) -> dict[str, Any]:
    """`{field: {"$eq": str(value)}}`: a literal match, whatever the value looks like."""
    return {field: {"$eq": str(value)}}


def parse_user_time(value: str | None, name: str) -> dt.datetime | None:
    """A time given on the command line (ISO-8601, `Z` or offset, naive = UTC)."""
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise QueryError(f"{name} {value!r} is not an ISO-8601 time (e.g. 2026-11-21T22:40:00Z)")
    return parsed


def time_range(field: str, since: dt.datetime | None, until: dt.datetime | None) -> dict:
    """`since <= field < until` on a BSON datetime field; empty when both are None."""
    cond: dict[str, Any] = {}
    if since is not None:
        cond["$gte"] = since
    if until is not None:
        cond["$lt"] = until
    return {field: cond} if cond else {}


def alert_filter(
    *,
    alert_id: str | None = None,
    user: str | None = None,
    card_last4: str | None = None,
    rule: str | None = None,
    severity: str | Sequence[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """The `alerts` filter for the CLI's options; each typed value is matched literally.

    `since`/`until` bound the alert's event time (`event_time_dt`, half-open).
    """
    clauses: list[dict[str, Any]] = []
    if alert_id is not None:  # stored as `_id` (mongo_sink/documents.py)
        clauses.append(eq("_id", alert_id))
    if user is not None:
        clauses.append(eq("user_id", user))
    if card_last4 is not None:
        clauses.append(eq("card_last4", card_last4))
    if rule is not None:
        clauses.append(eq("rule", rule.upper()))
    if isinstance(severity, str):
        clauses.append(eq("severity", severity.upper()))
    elif severity:
        clauses.append({"severity": {"$in": [str(s).upper() for s in severity]}})
    window = time_range("event_time_dt", since, until)
    if window:
        clauses.append(window)
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _plain(value: Any) -> Any:
    """JSON-friendly: datetimes as contract ISO strings."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return iso_ms_of(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _group_one(
    coll: Any, match: Mapping[str, Any], key: Any, value: Any = 1
) -> dict[Any, float | int]:
    """`$match` then `$group` with ONE `$sum` accumulator (see the FerretDB note above)."""
    pipeline: list[dict[str, Any]] = []
    if match:
        pipeline.append({"$match": dict(match)})
    pipeline.append({"$group": {"_id": key, "v": {"$sum": value}}})
    out: dict[Any, float | int] = {}
    for row in coll.aggregate(pipeline):
        k = row["_id"]
        if isinstance(k, dict):
            k = tuple(sorted(k.items()))
        out[k] = row["v"]
    return out


def _top_sum(
    coll: Any, match: Mapping[str, Any], key: Any, value: Any, limit: int
) -> list[dict[str, Any]]:
    """Top `limit` groups by one `$sum`, sorted in MongoDB (value desc, key asc)."""
    pipeline: list[dict[str, Any]] = []
    if match:
        pipeline.append({"$match": dict(match)})
    pipeline += [
        {"$group": {"_id": key, "v": {"$sum": value}}},
        {"$sort": {"v": -1, "_id": 1}},
        {"$limit": limit},
    ]
    return list(coll.aggregate(pipeline))


def _count_rows(counts: Mapping[Any, Any], name: str, order: Sequence[str] = ()) -> list[dict]:
    rank = {k: i for i, k in enumerate(order)}
    keys = sorted(counts, key=lambda k: (rank.get(k, len(rank)), -counts[k], str(k)))
    return [{name: k, "alerts": counts[k]} for k in keys]


def stats(
    db: Database, settings: Settings, now: dt.datetime | None = None, top: int = 5
) -> dict[str, Any]:
    """Totals, alerts by rule and by severity, top entities, alerts detected in the last hour."""
    m = settings.mongo
    alerts, windows = db[m.alerts_collection], db[m.window_stats_collection]
    now = now or dt.datetime.now(dt.UTC)
    by_rule = _group_one(alerts, {}, "$rule")
    by_severity = _group_one(alerts, {}, "$severity")
    top_entities = [
        {
            "entity_type": dict(row["_id"]).get("t"),
            "entity_id": dict(row["_id"]).get("e"),
            "card_last4": dict(row["_id"]).get("l"),
            "alerts": row["v"],
        }
        for row in _top_sum(
            alerts, {}, {"t": "$entity_type", "e": "$entity_id", "l": "$card_last4"}, 1, top
        )
    ]
    last_hour = alerts.count_documents(
        time_range("detected_at_dt", now - dt.timedelta(hours=1), None)
    )
    return {
        "total_alerts": alerts.count_documents({}),
        "total_window_stats": windows.count_documents({}),
        "dead_letters": db[m.dead_letters_collection].count_documents({}),
        "alerts_last_hour": last_hour,
        "now": iso_ms_of(now),
        "by_rule": _count_rows(by_rule, "rule"),
        "by_severity": _count_rows(by_severity, "severity", SEVERITIES[::-1]),
        "top_entities": top_entities,
    }


def find_alerts(
    db: Database, settings: Settings, flt: Mapping[str, Any], limit: int = 50
) -> list[dict[str, Any]]:
    """Alerts matching `flt`, newest event time first (ties by id), contract fields only."""
    cursor = (
        db[settings.mongo.alerts_collection]
        .find(dict(flt), {f"{t}_dt": 0 for t in TIME_FIELDS})
        .sort([("event_time_dt", -1), ("_id", 1)])
        .limit(max(0, limit))
    )
    out = []
    for doc in cursor:
        doc.pop("_id", None)
        out.append({k: _plain(doc.get(k)) for k in ALERT_FIELDS})
    return out


def _window_match(
    granularity: str, since: dt.datetime | None, until: dt.datetime | None, group: str | None
) -> dict[str, Any]:
    clauses = [eq("granularity", granularity)]
    if group is not None:
        clauses.append(eq("group", group))
    window = time_range("window_start_dt", since, until)
    if window:
        clauses.append(window)
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def windows(
    db: Database,
    settings: Settings,
    *,
    granularity: str = "global",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    bucket: str | None = None,
    group: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Window statistics over [since, until) by window start.

    `granularity`: "global" (the 10-s windows) or "category" (1-min windows per merchant
    category). `bucket` None returns the windows as stored; "1m"/"5m"/"1h" rolls them up:
    counts and sums by `$group` in MongoDB, min/max from the windows' own min/max and the
    average as sum/count in Python. `max_window_distinct_cards` is the largest per-window
    distinct-card count (distinct cards cannot be summed across windows).
    """
    if granularity not in GRANULARITIES:
        raise QueryError(f"granularity must be one of {sorted(GRANULARITIES)}")
    coll = db[settings.mongo.window_stats_collection]
    match = _window_match(GRANULARITIES[granularity], since, until, group)
    if bucket is None:
        cursor = coll.find(match).sort([("window_start_dt", 1), ("group", 1)]).limit(limit)
        rows = []
        for d in cursor:
            rows.append(
                {
                    "window_start": d.get("window_start"),
                    "window_end": d.get("window_end"),
                    "group": d.get("group"),
                    "txn_count": d.get("txn_count"),
                    "total_amount": d.get("total_amount"),
                    "min_amount": d.get("min_amount"),
                    "max_amount": d.get("max_amount"),
                    "avg_amount": d.get("avg_amount"),
                    "distinct_cards": d.get("distinct_cards"),
                }
            )
        return rows
    if bucket not in BUCKET_FIELDS:
        raise QueryError(f"bucket must be one of {sorted(BUCKET_FIELDS)}")
    bfield = BUCKET_FIELDS[bucket]
    key = {"b": f"${bfield}", "g": "$group"}
    counts = _group_one(coll, match, key, "$txn_count")
    amounts = _group_one(coll, match, key, "$total_amount")
    nwin = _group_one(coll, match, key, 1)
    extremes: dict[Any, dict[str, Any]] = {}
    projection = {bfield: 1, "group": 1, "min_amount": 1, "max_amount": 1, "distinct_cards": 1}
    for d in coll.find(match, projection):
        k = tuple(sorted({"b": d.get(bfield), "g": d.get("group")}.items()))
        e = extremes.setdefault(k, {"min": None, "max": None, "cards": 0})
        lo, hi = d.get("min_amount"), d.get("max_amount")
        if lo is not None and (e["min"] is None or lo < e["min"]):
            e["min"] = lo
        if hi is not None and (e["max"] is None or hi > e["max"]):
            e["max"] = hi
        e["cards"] = max(e["cards"], d.get("distinct_cards") or 0)
    width = dt.timedelta(seconds=BUCKETS[bfield])
    rows = []
    for k in sorted(counts, key=lambda k: (str(dict(k)["b"]), str(dict(k)["g"]))):
        kd = dict(k)
        start = parse_time(kd["b"])
        n, total = counts[k], amounts.get(k, 0)
        rows.append(
            {
                "bucket_start": kd["b"],
                "bucket_end": iso_ms_of(start + width) if start else None,
                "group": kd["g"],
                "windows": nwin.get(k, 0),
                "txn_count": n,
                "total_amount": round(total, 2),
                "min_amount": extremes.get(k, {}).get("min"),
                "max_amount": extremes.get(k, {}).get("max"),
                "avg_amount": round(total / n, 2) if n else None,
                "max_window_distinct_cards": extremes.get(k, {}).get("cards"),
            }
        )
    return rows[:limit]


def top(
    db: Database, settings: Settings, what: TopWhat, by: TopBy = "alerts", limit: int = 10
) -> list[dict[str, Any]]:
    """Top cards, users or devices by alert count or alerted amount (from `alerts`), or top
    merchant categories by transaction count or amount (from the 1-min category windows;
    alerts carry no category, so `categories` cannot rank by alerts)."""
    m = settings.mongo
    if what == "categories":
        if by == "alerts":
            raise QueryError("alerts carry no merchant category: use --by amount|transactions")
        value = "$total_amount" if by == "amount" else "$txn_count"
        rows = _top_sum(
            db[m.window_stats_collection],
            eq("granularity", "merchant_category"),
            "$group",
            value,
            limit,
        )
        return [{"category": r["_id"], by: _round(r["v"])} for r in rows]
    if by == "transactions":
        raise QueryError("cards, users and devices rank by alerts or amount")
    value = 1 if by == "alerts" else "$amount"
    alerts = db[m.alerts_collection]
    if what == "cards":
        rows = _top_sum(
            alerts, eq("entity_type", "card"), {"e": "$entity_id", "l": "$card_last4"}, value, limit
        )
        return [
            {"card_token": r["_id"].get("e"), "card_last4": r["_id"].get("l"), by: _round(r["v"])}
            for r in rows
        ]
    if what == "devices":
        rows = _top_sum(alerts, eq("entity_type", "device"), "$entity_id", value, limit)
        return [{"device_id": r["_id"], by: _round(r["v"])} for r in rows]
    if what == "users":
        rows = _top_sum(alerts, {"user_id": {"$type": "string"}}, "$user_id", value, limit)
        return [{"user_id": r["_id"], by: _round(r["v"])} for r in rows]
    raise QueryError(f"unknown ranking {what!r}: cards, users, devices or categories")


def _round(v: Any) -> Any:
    return round(v, 2) if isinstance(v, float) else v
