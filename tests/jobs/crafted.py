"""A crafted input for the live job: one hit per rule, bad records among valid ones, re-delivered
and late transactions, and a far-future flush, with the exact expected outcome. It checks the
wiring (Kafka in, every sink out), not the rules' logic: that is in the given/expect cases
beside each rule.

All cases share one 1-partition topic; each case uses its own cards, users and devices, so rules
keyed by card or device see only that case. Times are seconds after T0 (yesterday 01:00 UTC, so
the first hours count as "night" for the risk score).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.jobs.live_job import Record

CITIES = {
    "Oakland": ("CA", 37.8044, -122.2712),
    "San Francisco": ("CA", 37.7749, -122.4194),
    "New York": ("NY", 40.7128, -74.0060),
    "Los Angeles": ("CA", 34.0522, -118.2437),
}


def iso(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class Crafted:
    t0_ms: int
    records: list[Record] = field(default_factory=list)
    # sent once the job has read `records` (flush included): behind the watermark by then
    late_records: list[Record] = field(default_factory=list)
    # the transactions windows count (re-deliveries and late ones left out)
    valid: list[dict[str, Any]] = field(default_factory=list)
    # (rule, card number or device id) -> expected number of alerts
    expected_alerts: Counter = field(default_factory=Counter)
    expected_dlq: Counter = field(default_factory=Counter)
    card_numbers: set[str] = field(default_factory=set)
    flush_ms: int = 0
    _ids: itertools.count = field(default_factory=itertools.count)
    _cards: itertools.count = field(default_factory=lambda: itertools.count(1))

    def card(self) -> str:
        number = f"4{next(self._cards):015d}"
        self.card_numbers.add(number)
        return number

    def named_cards(self, names: str, key: str) -> tuple[dict[str, str], dict[str, str]]:
        """A new card per letter of `names`: (letter -> number, letter -> its card token
        under `key`, the entity_id of its alerts)."""
        from udfs.card_token import card_token

        numbers = {name: self.card() for name in names}
        return numbers, {name: card_token(n, key) for name, n in numbers.items()}

    def txn(
        self,
        card: str,
        at_s: float,
        amount: str = "20.00",
        *,
        user: str | None = None,
        device: str | None = None,
        city: str = "Oakland",
        category: str = "grocery",
        channel: str = "pos",
    ) -> dict[str, Any]:
        state, lat, lon = CITIES[city]
        ms = self.t0_ms + int(at_s * 1000)
        value = {
            "transaction_id": f"tx-{next(self._ids):05d}",
            "card_number": card,
            "user_id": user or f"u-{card[-6:]}",
            "device_id": device or f"d-{card[-6:]}",
            "amount": float(Decimal(amount)),
            "currency": "USD",
            "merchant": "Acme",
            "merchant_category": category,
            "channel": channel,
            "location": {"city": city, "state": state, "lat": lat, "lon": lon},
            "event_time": iso(ms),
        }
        return value

    def add(self, value: dict[str, Any], *, valid: bool = True, ts_ms: int | None = None) -> None:
        ts = ts_ms if ts_ms is not None else self._ts(value)
        self.records.append(Record(value, ts, key=value.get("user_id")))
        if valid:
            self.valid.append(value)

    def add_raw(self, payload: bytes, ts_ms: int, reason: str) -> None:
        self.records.append(Record(payload, ts_ms))
        self.expected_dlq[reason] += 1

    def bad(self, value: dict[str, Any], reason: str, ts_ms: int) -> None:
        self.add(value, valid=False, ts_ms=ts_ms)
        self.expected_dlq[reason] += 1

    def _ts(self, value: dict[str, Any]) -> int:
        if isinstance(value["event_time"], int):
            return value["event_time"]
        t = dt.datetime.strptime(value["event_time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        return int(t.replace(tzinfo=dt.UTC).timestamp() * 1000)


def build(partitions: int = 1) -> Crafted:
    """The whole crafted input, records in production order, with expectations; for a topic of
    several `partitions`, the flush goes to each of them."""
    today = dt.datetime.now(dt.UTC).date()
    t0 = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(1, 0), tzinfo=dt.UTC)
    c = Crafted(t0_ms=int(t0.timestamp() * 1000))
    timeline: list[tuple[float, dict[str, Any]]] = []

    def at(card: str, s: float, amount: str = "20.00", **kw: Any) -> None:
        timeline.append((s, c.txn(card, s, amount, **kw)))

    # One hit per rule: the rules' hits, near misses, boundaries, cooldown and ordering are
    # the given/expect cases beside each rule (sql_templates/rules/*.cases.yaml), run
    # in-process; here the hits only prove the wiring from Kafka to Kafka.
    vel = c.card()
    for s in (5, 15, 25, 35):
        at(vel, s)
    c.expected_alerts["VELOCITY", vel] += 1
    for i, s in enumerate((60, 65, 70, 75)):
        at(c.card(), s, user=f"u-dev4-{i}", device="d-shared-4")
    c.expected_alerts["DEVICE_SHARING", "d-shared-4"] += 1
    hv = c.card()
    at(hv, 85, "500.01")
    c.expected_alerts["HIGH_VALUE", hv] += 1
    # RISK_SCORE: 1000.00 electronics online at night -> 0.9 (and HIGH_VALUE)
    rk = c.card()
    at(rk, 90, "1000.00", category="electronics", channel="online")
    c.expected_alerts["RISK_SCORE", rk] += 1
    c.expected_alerts["HIGH_VALUE", rk] += 1
    ct = c.card()
    for s, amt in ((100, "1.00"), (220, "1.50"), (340, "0.99"), (460, "250.00")):
        at(ct, s, amt)
    c.expected_alerts["CARD_TESTING", ct] += 1
    gh = c.card()
    at(gh, 110, city="Oakland")
    at(gh, 410, city="San Francisco")
    c.expected_alerts["GEO_HOP", gh] += 1
    it = c.card()
    at(it, 120, city="New York")
    at(it, 3720, city="Los Angeles")
    c.expected_alerts["IMPOSSIBLE_TRAVEL", it] += 1
    # a re-delivered purchase counts once in a VELOCITY burst and in window_stats
    redelivered = c.card()
    for s in (150, 160, 170, 180):
        at(redelivered, s)
    c.expected_alerts["VELOCITY", redelivered] += 1
    # a card with recent traffic, whose 950.00 purchase arrives behind the watermark: still
    # judged by HIGH_VALUE, and a dead letter `late_event` for the windows and patterns
    late_card = c.card()
    at(late_card, 3000)
    late = c.txn(late_card, 2900, "950.00")
    c.late_records.append(Record(late, c._ts(late), key=late["user_id"]))
    c.expected_alerts["HIGH_VALUE", late_card] += 1
    c.expected_dlq["late_event"] += 1
    timeline.sort(key=lambda p: p[0])
    before = [p for p in timeline if p[0] < 2500]
    after = [p for p in timeline if p[0] >= 2500]
    for _, v in before:
        c.add(v)
        if v["card_number"] == redelivered and v["event_time"].endswith(("40.000Z", "50.000Z")):
            c.add(dict(v), valid=False)  # the same transaction again, as a gateway retry sends it

    # Bad records between the valid transactions of a VELOCITY hit (segment at 2500 s)
    dq = c.card()
    c.expected_alerts["VELOCITY", dq] += 1
    ts = c.t0_ms + 2500_000

    def bad_fields(s: float, **changes: Any) -> dict[str, Any]:
        v = c.txn(c.card(), s)
        for k, val in changes.items():
            if val is _DROP:
                v.pop(k)
            else:
                v[k] = val
        return v

    c.add(c.txn(dq, 2500))
    c.add_raw(b"garbage card=4000000000009999 {", ts + 1000, "not_json")
    c.card_numbers.add("4000000000009999")
    c.add_raw(b"[1, 2, 3]", ts + 1500, "not_object")
    c.add_raw(b'"just a string"', ts + 2000, "not_object")
    c.bad(bad_fields(2502, amount=_DROP), "missing_field:amount", ts + 2500)
    c.bad(bad_fields(2503, amount="abc"), "bad_amount", ts + 3000)
    c.bad(bad_fields(2504, amount="NaN"), "bad_amount", ts + 3500)
    c.bad(bad_fields(2505, amount=-5), "nonpositive_amount", ts + 4000)
    c.bad(bad_fields(2506, amount=0), "nonpositive_amount", ts + 4500)
    c.add(c.txn(dq, 2510))
    # its Kafka timestamp is wall-clock now, a day after the data: a bad time must not lend
    # the record that timestamp as rowtime, or the watermark would jump a day ahead and the
    # rest of dq's burst (and everything after it) would be dropped as late
    wall_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    c.bad(bad_fields(2511, event_time="yesterday"), "bad_event_time", wall_ms)
    c.bad(bad_fields(2512, event_time=_DROP), "missing_field:event_time", ts + 12_000)
    loc = bad_fields(2513)
    loc["location"]["lat"] = 123.0
    c.bad(loc, "bad_location", ts + 13_000)
    c.bad(bad_fields(2514, card_number=_DROP), "missing_field:card_number", ts + 14_000)
    c.bad(bad_fields(2515, transaction_id=_DROP), "missing_field:transaction_id", ts + 15_000)
    # U+0000 separates the ids in the window rules' state: an id holding it is refused
    c.bad(bad_fields(2519, transaction_id="t-\u0000-2519"), "bad_transaction_id", ts + 15_500)
    c.add_raw(b"null", ts + 2100, "not_object")
    c.add_raw(b"42", ts + 2200, "not_object")
    c.bad(bad_fields(2507, amount=True), "bad_amount", ts + 5000)
    c.bad(bad_fields(2508, amount={"value": 12.5}), "bad_amount", ts + 6000)
    inf = json.dumps(bad_fields(2509, amount=0.0)).replace('"amount": 0.0', '"amount": 1e999')
    assert "1e999" in inf
    c.add_raw(inf.encode(), ts + 7000, "bad_amount")
    c.bad(bad_fields(2516, event_time=""), "bad_event_time", ts + 16_000)
    c.bad(bad_fields(2517, event_time="2026-13-45T25:61:00Z"), "bad_event_time", ts + 17_000)
    # a `location` that is not an object reads as no location: still a valid transaction
    no_loc = c.txn(c.card(), 2518)
    no_loc["location"] = "Oakland"
    c.add(no_loc)
    c.add(c.txn(dq, 2520))
    epoch = c.txn(dq, 2530)
    epoch["event_time"] = c.t0_ms + 2530_000  # epoch milliseconds are accepted too
    c.add(epoch, ts_ms=c.t0_ms + 2530_000)

    for _, v in after:
        c.add(v)

    # Flush: one transaction a day later moves the watermark past every window and pattern
    flush_card = c.card()
    flush = c.txn(flush_card, 86_400)
    c.flush_ms = c._ts(flush)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    c.add(flush, ts_ms=min(c.flush_ms, now_ms))
    if partitions > 1:
        # the watermark is the least of the partitions': a quiet partition holds it back (the
        # job marks none idle while the whole input is quiet, docs/contract.md), so each one
        # gets a flush of its own, on a card of its own
        c.records[-1].partition = 0
        for p in range(1, partitions):
            c.add(c.txn(c.card(), 86_400), ts_ms=min(c.flush_ms, now_ms))
            c.records[-1].partition = p
    # Kafka refuses record timestamps far in the future: never send one past now
    for r in (*c.records, *c.late_records):
        r.timestamp_ms = min(r.timestamp_ms, now_ms)
    return c


class _Drop:
    pass


_DROP = _Drop()


def expected_window_stats(
    c: Crafted, token: Any, global_s: int = 10, category_s: int = 60, delay_ms: int = 5000
) -> dict[str, dict[str, Any]]:
    """Plain-Python window statistics of the valid transactions, for every window the
    watermark (flush - delay) has closed. `token(card_number)` gives the card token."""
    watermark = c.flush_ms - delay_ms
    groups: dict[tuple[str, str, int, int], list[dict[str, Any]]] = {}
    for v in c.valid:
        ms = c._ts(v)
        for gran, group, size in (
            ("global", "ALL", global_s * 1000),
            ("merchant_category", v["merchant_category"], category_s * 1000),
        ):
            start = ms - ms % size
            groups.setdefault((gran, group, start, start + size), []).append(v)
    out = {}
    for (gran, group, start, end), rows in groups.items():
        if end - 1 > watermark:
            continue
        amounts = [Decimal(str(r["amount"])) for r in rows]
        stat_id = f"{gran}|{group}|{iso(start)}"
        out[stat_id] = {
            "stat_id": stat_id,
            "granularity": gran,
            "group": group,
            "window_start": iso(start),
            "window_end": iso(end),
            "txn_count": len(rows),
            "total_amount": float(sum(amounts)),
            "min_amount": float(min(amounts)),
            "max_amount": float(max(amounts)),
            "avg_amount": float(sum(amounts)) / len(rows),
            "distinct_cards": len({token(r["card_number"]) for r in rows}),
        }
    return out
