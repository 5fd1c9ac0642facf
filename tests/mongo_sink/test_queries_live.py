"""Every `fraudctl query` command on a known dataset in the live FerretDB, as table and JSON.

Dataset (event times 2026-11-21, detected 2 s later):
  a1 22:00:05 VELOCITY       HIGH     card tokA 1111 u_1  10.0
  a2 22:10    VELOCITY       HIGH     card tokA 1111 u_1  20.0
  a3 22:20    HIGH_VALUE     MEDIUM   card tokB 2222 u_2 900.0
  a4 22:30    CARD_TESTING   CRITICAL card tokB 2222 u_2 250.0
  a5 22:40    DEVICE_SHARING CRITICAL device d_9  (no user, no card)
  a6 22:50    GEO_HOP        HIGH     card tokC 3333 u_3  30.0
  a7 23:00    RISK_SCORE     MEDIUM   card tokA 1111 u_1  40.0 (score 0.85)
Global 10-s windows i = 0..11 from 22:04:00: txn_count i+1, total 10(i+1), min 1+i, max 100+i,
distinct cards i+1. Category 1-min windows at 22:04, 22:05, 22:06: grocery 5 txns / 100.0,
travel 2 txns / 1000.0 each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from config import Settings, load_settings
from fraudctl import mongo
from fraudctl.app import app
from fraudctl.cli_common import cell
from mongo_sink import store
from mongo_sink.documents import decode

pytestmark = pytest.mark.integration

INJECTION = '{"$ne": null}'


def alert(aid: str, at: str, rule: str, sev: str, etype: str, eid: str, **kw: Any) -> dict:
    return {
        "alert_id": aid,
        "rule": rule,
        "severity": sev,
        "entity_type": etype,
        "entity_id": eid,
        "user_id": kw.get("user"),
        "card_last4": kw.get("last4"),
        "card_token": eid if etype == "card" else None,
        "transaction_ids": [f"t_{aid}"],
        "amount": kw.get("amount"),
        "score": kw.get("score"),
        "window_start": None,
        "window_end": None,
        "event_time": f"2026-11-21T{at}.000Z",
        "detected_at": f"2026-11-21T{at[:-2]}{int(at[-2:]) + 2:02d}.000Z",
        "details": {},
    }


ALERTS = [
    alert(
        "a1", "22:00:05", "VELOCITY", "HIGH", "card", "tokA", user="u_1", last4="1111", amount=10.0
    ),
    alert(
        "a2", "22:10:00", "VELOCITY", "HIGH", "card", "tokA", user="u_1", last4="1111", amount=20.0
    ),
    alert(
        "a3",
        "22:20:00",
        "HIGH_VALUE",
        "MEDIUM",
        "card",
        "tokB",
        user="u_2",
        last4="2222",
        amount=900.0,
    ),
    alert(
        "a4",
        "22:30:00",
        "CARD_TESTING",
        "CRITICAL",
        "card",
        "tokB",
        user="u_2",
        last4="2222",
        amount=250.0,
    ),
    alert("a5", "22:40:00", "DEVICE_SHARING", "CRITICAL", "device", "d_9"),
    alert(
        "a6", "22:50:00", "GEO_HOP", "HIGH", "card", "tokC", user="u_3", last4="3333", amount=30.0
    ),
    alert(
        "a7",
        "23:00:00",
        "RISK_SCORE",
        "MEDIUM",
        "card",
        "tokA",
        user="u_1",
        last4="1111",
        amount=40.0,
        score=0.85,
    ),
]


def window(
    gran: str,
    group: str,
    start: str,
    end: str,
    n: int,
    total: float,
    lo: float,
    hi: float,
    cards: int,
) -> dict:
    return {
        "stat_id": f"{gran}|{group}|{start}",
        "granularity": gran,
        "group": group,
        "window_start": start,
        "window_end": end,
        "txn_count": n,
        "total_amount": total,
        "min_amount": lo,
        "max_amount": hi,
        "avg_amount": round(total / n, 2),
        "distinct_cards": cards,
    }


def _t(minute: int, sec: int) -> str:
    return f"2026-11-21T22:{minute:02d}:{sec:02d}.000Z"


GLOBAL = [
    window(
        "global",
        "ALL",
        _t(4 + i // 6, i % 6 * 10),
        _t(4 + (i + 1) // 6, (i + 1) % 6 * 10),
        i + 1,
        10.0 * (i + 1),
        1.0 + i,
        100.0 + i,
        i + 1,
    )
    for i in range(12)
]
CATEGORY = [
    window("merchant_category", cat, _t(m, 0), _t(m + 1, 0), n, total, 1.0, 50.0, 2)
    for m in (4, 5, 6)
    for cat, n, total in (("grocery", 5, 100.0), ("travel", 2, 1000.0))
]


@pytest.fixture(scope="module")
def dataset(live_stack: Settings) -> Iterator[Settings]:
    import uuid

    s = load_settings(mongo={"database": f"t5q_{uuid.uuid4().hex[:10]}"})
    client = mongo.client_for(s)
    db = mongo.database(client, s)
    store.ensure_indexes(db, s)
    store.write(
        db[s.mongo.alerts_collection],
        [decode("alert", json.dumps(a).encode()) for a in ALERTS],
        "insert_first",
    )
    store.write(
        db[s.mongo.window_stats_collection],
        [decode("window_stat", json.dumps(w).encode()) for w in GLOBAL + CATEGORY],
        "insert_first",
    )
    yield s
    client.drop_database(s.mongo.database)
    client.close()


def cli(settings: Settings, *args: str) -> str:
    """Run `fraudctl <args>` in-process with the dataset's database; returns stdout."""
    runner = CliRunner()
    env = {"FRAUD_MONGO__DATABASE": settings.mongo.database, "COLUMNS": "220"}
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def js(settings: Settings, *args: str) -> Any:
    return json.loads(cli(settings, *args, "--json"))


def ids(rows: list[dict]) -> list[str]:
    return [r["alert_id"] for r in rows]


def test_stats(dataset: Settings) -> None:
    out = js(dataset, "query", "stats", "--now", "2026-11-21T23:05:00Z", "--top", "3")
    assert (out["total_alerts"], out["total_window_stats"], out["dead_letters"]) == (7, 18, 0)
    # detected in [22:05, 23:05): a2..a7
    assert out["alerts_last_hour"] == 6
    assert {r["rule"]: r["alerts"] for r in out["by_rule"]} == {
        "VELOCITY": 2,
        "HIGH_VALUE": 1,
        "CARD_TESTING": 1,
        "DEVICE_SHARING": 1,
        "GEO_HOP": 1,
        "RISK_SCORE": 1,
    }
    assert [(r["severity"], r["alerts"]) for r in out["by_severity"]] == [
        ("CRITICAL", 2),
        ("HIGH", 3),
        ("MEDIUM", 2),
    ]
    assert [(r["entity_id"], r["alerts"]) for r in out["top_entities"][:2]] == [
        ("tokA", 3),
        ("tokB", 2),
    ]
    assert out["top_entities"][0]["card_last4"] == "1111"
    table = cli(dataset, "query", "stats", "--now", "2026-11-21T23:05:00Z")
    for text in ("total_alerts", "alerts_last_hour", "VELOCITY", "CRITICAL", "tokA"):
        assert text in table


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--user", "u_1"], ["a7", "a2", "a1"]),
        (["--card-last4", "2222"], ["a4", "a3"]),
        (["--rule", "velocity"], ["a2", "a1"]),
        (["--severity", "CRITICAL"], ["a5", "a4"]),
        (
            ["--since", "2026-11-21T22:10:00Z", "--until", "2026-11-21T22:40:00Z"],
            ["a4", "a3", "a2"],
        ),
        (["--user", "u_1", "--rule", "RISK_SCORE"], ["a7"]),
        (["--id", "a3"], ["a3"]),
        (["--id", "a3", "--rule", "VELOCITY"], []),
        (["--id", INJECTION], []),
        (["--limit", "2"], ["a7", "a6"]),
        (["--user", INJECTION], []),
        (["--card-last4", '{"$gt": ""}'], []),
    ],
)
def test_alerts_filters(dataset: Settings, args: list[str], expected: list[str]) -> None:
    assert ids(js(dataset, "query", "alerts", *args)) == expected
    table = cli(dataset, "query", "alerts", *args)
    assert f"Alerts ({len(expected)})" in table
    for aid in expected:
        assert aid in table


def test_injection_matches_a_user_literally_named_so_and_nothing_else(
    dataset: Settings,
) -> None:
    client = mongo.client_for(dataset)
    coll = mongo.database(client, dataset)[dataset.mongo.alerts_collection]
    literal = alert(
        "a8",
        "23:10:00",
        "HIGH_VALUE",
        "MEDIUM",
        "card",
        "tokD",
        user=INJECTION,
        last4="4444",
        amount=600.0,
    )
    store.write(coll, [decode("alert", json.dumps(literal).encode())], "insert_first")
    try:
        assert ids(js(dataset, "query", "alerts", "--user", INJECTION)) == ["a8"]
    finally:
        coll.delete_one({"_id": "a8"})
        client.close()


def test_high_is_high_and_critical_only(dataset: Settings) -> None:
    assert ids(js(dataset, "query", "high")) == ["a6", "a5", "a4", "a2", "a1"]
    assert ids(js(dataset, "query", "high", "--since", "2026-11-21T22:30:00Z")) == [
        "a6",
        "a5",
        "a4",
    ]
    table = cli(dataset, "query", "high")
    assert "HIGH and CRITICAL alerts (5)" in table and "MEDIUM" not in table


def test_windows_as_stored_in_a_range(dataset: Settings) -> None:
    rows = js(
        dataset,
        "query",
        "windows",
        "--since",
        "2026-11-21T22:04:30Z",
        "--until",
        "2026-11-21T22:05:10Z",
    )
    assert [(r["window_start"], r["txn_count"]) for r in rows] == [
        (_t(4, 30), 4),
        (_t(4, 40), 5),
        (_t(4, 50), 6),
        (_t(5, 0), 7),
    ]
    cat = js(dataset, "query", "windows", "-g", "category", "--category", "travel")
    assert [(r["window_start"], r["total_amount"]) for r in cat] == [
        (_t(4, 0), 1000.0),
        (_t(5, 0), 1000.0),
        (_t(6, 0), 1000.0),
    ]
    assert "global windows (12)" in cli(dataset, "query", "windows")


def test_windows_rolled_up(dataset: Settings) -> None:
    minute = js(dataset, "query", "windows", "--bucket", "1m")
    assert [
        (
            r["bucket_start"],
            r["windows"],
            r["txn_count"],
            r["total_amount"],
            r["min_amount"],
            r["max_amount"],
            r["avg_amount"],
            r["max_window_distinct_cards"],
        )
        for r in minute
    ] == [
        (_t(4, 0), 6, 21, 210.0, 1.0, 105.0, 10.0, 6),
        (_t(5, 0), 6, 57, 570.0, 7.0, 111.0, 10.0, 12),
    ]
    five = js(dataset, "query", "windows", "--bucket", "5m")
    assert [
        (r["bucket_start"], r["bucket_end"], r["txn_count"], r["min_amount"], r["max_amount"])
        for r in five
    ] == [(_t(0, 0), _t(5, 0), 21, 1.0, 105.0), (_t(5, 0), _t(10, 0), 57, 7.0, 111.0)]
    hour = js(dataset, "query", "windows", "-g", "category", "-b", "1h")
    assert [
        (r["group"], r["windows"], r["txn_count"], r["total_amount"], r["avg_amount"]) for r in hour
    ] == [("grocery", 3, 15, 300.0, 20.0), ("travel", 3, 6, 3000.0, 500.0)]
    part = js(dataset, "query", "windows", "-b", "5m", "--since", "2026-11-21T22:05:00Z")
    assert part[0]["txn_count"] == 57
    table = cli(dataset, "query", "windows", "-b", "1m")
    assert "global windows rolled up to 1m (2)" in table and "570.0" in table


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["cards"], [("tokA", "1111", 3), ("tokB", "2222", 2), ("tokC", "3333", 1)]),
        (
            ["cards", "--by", "amount"],
            [("tokB", "2222", 1150.0), ("tokA", "1111", 70.0), ("tokC", "3333", 30.0)],
        ),
        (["users"], [("u_1", 3), ("u_2", 2), ("u_3", 1)]),
        (["devices"], [("d_9", 1)]),
        (["categories", "--by", "amount"], [("travel", 3000.0), ("grocery", 300.0)]),
        (["categories", "--by", "transactions"], [("grocery", 15), ("travel", 6)]),
        (["users", "--limit", "1"], [("u_1", 3)]),
    ],
)
def test_top(dataset: Settings, args: list[str], expected: list[tuple]) -> None:
    rows = js(dataset, "query", "top", *args)
    assert [tuple(r.values()) for r in rows] == expected
    table = cli(dataset, "query", "top", *args)
    for row in expected:
        assert str(row[0]) in table and cell(row[-1]) in table


def test_bad_arguments_fail_cleanly(dataset: Settings) -> None:
    runner = CliRunner()
    env = {"FRAUD_MONGO__DATABASE": dataset.mongo.database}
    bad = runner.invoke(app, ["query", "alerts", "--since", "last tuesday"], env=env)
    assert bad.exit_code == 2 and "ISO-8601" in bad.output
    cats = runner.invoke(app, ["query", "top", "categories", "--by", "alerts"], env=env)
    assert cats.exit_code == 2 and "no merchant category" in cats.output
