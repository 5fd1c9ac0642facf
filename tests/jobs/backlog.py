"""A backlog of days of traffic over several partitions, and what the job must make of it.

Each partition's records are in event-time order. Then, once the job has read them, a few
records arrive that are late within their own partition: older than the backlog itself (a
gateway's stale retries), so behind the watermark wherever the reads stand. (Within a backlog a
record only a little late within its partition may still find its windows open: Flink emits
the watermark every 200 ms, a backlog is read thousands of records at a time, and the Python
operator passes a watermark on when its bundle ends; such a record is then counted like any
other, and no test here asserts either way.) Labelled
VELOCITY bursts (five purchases of one card within 40 s) are spread over the days. Normal
traffic trips no rule: a card buys in one city, on its own device, small amounts, at least
20 minutes apart. So the job must raise exactly one VELOCITY alert per burst and nothing else,
dead-letter exactly the late records as `late_event`, and count every other transaction once in
`window_stats`, however the partitions are read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, Record
from udfs.card_token import card_token

DAY_S = 86_400
PURCHASES_PER_CARD = 10
BURST = (0, 10, 20, 30, 40)  # seconds after a burst's start: more than 3 in one window
LATE_BEFORE_START_S = (3_600, 6 * 3_600)  # how much older than the backlog a late record is


@dataclass
class Backlog:
    """The records in production order; `late`, to be produced once the job has read them,
    then `flush`, one per partition a day after the last, which moves the watermark past every
    window of the backlog."""

    records: list[Record]
    late: list[Record]
    flush: list[Record]
    burst_cards: set[str]
    late_ids: set[str]
    # the valid transactions that are not late: window_stats counts each once
    counted: int
    partitions: int
    end_ms: int
    by_partition: dict[int, list[Record]] = field(default_factory=dict)

    def split_at(self, fraction: float) -> tuple[list[Record], list[Record]]:
        """The records produced before and after `fraction` of the backlog's event-time
        span, both in production order."""
        start = self.records[0].timestamp_ms
        cut = start + (self.end_ms - start) * fraction
        n = sum(1 for r in self.records if r.timestamp_ms < cut)
        return self.records[:n], self.records[n:]


def build_backlog(
    t0_ms: int,
    days: float = 2,
    cards: int = 1_500,
    partitions: int = 4,
    bursts: int = 60,
    late_per_partition: int = 10,
    seed: int = 33,
) -> Backlog:
    """The backlog from `t0_ms` on (see the module docstring); every record's Kafka timestamp
    is its event time, so `t0_ms` must lie more than `days` + 1 days in the past."""
    rng = random.Random(seed)
    crafted = Crafted(t0_ms=t0_ms)
    span_s = days * DAY_S
    rows: list[tuple[int, Record]] = []  # (partition, record)

    def txn(partition: int, card: str, at_s: float, amount: str = "20.00") -> Record:
        value = crafted.txn(card, at_s, amount)
        ms = t0_ms + int(at_s * 1000)
        return Record(value, ms, key=value["user_id"], partition=partition)

    def add(partition: int, card: str, at_s: float, amount: str) -> None:
        rows.append((partition, txn(partition, card, at_s, amount)))

    slot_s = span_s / PURCHASES_PER_CARD
    for i in range(cards):
        card = crafted.card()
        for k in range(PURCHASES_PER_CARD):
            at = k * slot_s + 600 + rng.random() * (slot_s - 1_200)
            add(i % partitions, card, at, f"{rng.randint(5, 99)}.{rng.randint(0, 99):02d}")
    burst_cards = set()
    for i in range(bursts):
        card = crafted.card()
        burst_cards.add(card)
        start = 3_600 + rng.random() * (span_s - 7_200)
        for offset in BURST:
            add(i % partitions, card, start + offset, "25.00")

    by_partition: dict[int, list[Record]] = {p: [] for p in range(partitions)}
    for partition, record in sorted(rows, key=lambda pr: pr[1].timestamp_ms):
        by_partition[partition].append(record)
    counted = len(rows)

    # production order: the partitions interleaved by event time, as a gateway writes them
    produced = sorted(
        ((r.timestamp_ms, p, r) for p, records in by_partition.items() for r in records),
        key=lambda t: (t[0], t[1]),
    )
    late = [
        txn(p, crafted.card(), -rng.uniform(*LATE_BEFORE_START_S), "15.00")
        for p in range(partitions)
        for _ in range(late_per_partition)
    ]

    flush = [txn(p, crafted.card(), span_s + DAY_S) for p in range(partitions)]
    return Backlog(
        records=[r for _, _, r in produced],
        late=late,
        flush=flush,
        burst_cards=burst_cards,
        late_ids={r.value["transaction_id"] for r in late},
        counted=counted,
        partitions=partitions,
        end_ms=t0_ms + int(span_s * 1000),
        by_partition=by_partition,
    )


def _record(value: dict[str, Any], partition: int) -> Record:
    return Record(value, value["_event_ms"], key=value["user_id"], partition=partition)


@dataclass
class Outcome:
    """What one job made of a backlog, each output de-duplicated by its idempotency key (the
    sinks are at-least-once: a restart may write some again)."""

    velocity_cards: dict[str, int]  # card token -> VELOCITY alerts
    other_alerts: list[dict[str, Any]]
    late_ids: set[str]
    counted: int  # transactions counted in the closed 10 s windows


def collect(job: LiveJob, backlog: Backlog, key: str, timeout_s: float = 300) -> Outcome:
    """Read the job's outputs until they hold the backlog's expected totals (or `timeout_s`
    passes), then a few seconds more, so that an extra output would be seen too."""
    topics = job.settings.kafka.topics
    expected_tokens = {card_token(c, key) for c in backlog.burst_cards}

    def unique(messages: list[dict[str, Any]], id_of) -> dict[Any, dict[str, Any]]:  # type: ignore[no-untyped-def]
        return {id_of(m["value"]): m["value"] for m in messages}

    def velocity_tokens(messages: list[dict[str, Any]]) -> set[str]:
        alerts = unique(messages, lambda a: a["alert_id"]).values()
        return {a["entity_id"] for a in alerts if a["rule"] == "VELOCITY"}

    alerts = unique(
        job.read(
            topics.fraud_alerts,
            lambda m: velocity_tokens(m) >= expected_tokens,
            timeout_s,
            settle_s=5,
        ),
        lambda a: a["alert_id"],
    ).values()

    def late(messages: list[dict[str, Any]]) -> set[str]:
        letters = unique(messages, lambda d: (d["kafka_partition"], d["kafka_offset"])).values()
        return {d["payload"]["transaction_id"] for d in letters if d["reason"] == "late_event"}

    dead = job.read(topics.dlq, lambda m: late(m) >= backlog.late_ids, 120, settle_s=5)

    def counted(messages: list[dict[str, Any]]) -> int:
        stats = unique(messages, lambda w: w["stat_id"]).values()
        return sum(
            w["txn_count"]
            for w in stats
            if w["granularity"] == "global" and _iso_ms(w["window_end"]) <= backlog.end_ms
        )

    stats = job.read(
        topics.window_stats, lambda m: counted(m) >= backlog.counted, timeout_s, settle_s=5
    )
    velocity: dict[str, int] = {}
    for a in alerts:
        if a["rule"] == "VELOCITY":
            velocity[a["entity_id"]] = velocity.get(a["entity_id"], 0) + 1
    return Outcome(
        velocity_cards=velocity,
        other_alerts=[a for a in alerts if a["rule"] != "VELOCITY"],
        late_ids=late(dead),
        counted=counted(stats),
    )


def _iso_ms(text: str) -> int:
    import datetime as dt

    t = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def assert_judged_on_time(outcome: Outcome, backlog: Backlog, key: str) -> None:
    """Every burst alerted once and nothing else did; the late dead letters are exactly the
    records late within their own partition; every other transaction counted once."""
    expected = {card_token(c, key) for c in backlog.burst_cards}
    missed = expected - set(outcome.velocity_cards)
    assert not missed, f"{len(missed)} of {len(expected)} VELOCITY bursts raised no alert"
    assert set(outcome.velocity_cards) == expected, "VELOCITY alerts for cards with no burst"
    assert set(outcome.velocity_cards.values()) == {1}, "a burst alerted more than once"
    assert outcome.other_alerts == [], f"unexpected alerts: {outcome.other_alerts[:3]}"
    wrongly_late = outcome.late_ids - backlog.late_ids
    assert not wrongly_late, (
        f"{len(wrongly_late)} transactions in order within their partition were dead-lettered "
        f"as late, e.g. {sorted(wrongly_late)[:5]}"
    )
    assert outcome.late_ids == backlog.late_ids, "late records that were not dead-lettered"
    assert outcome.counted == backlog.counted, (
        f"window_stats counted {outcome.counted} transactions of the {backlog.counted} on time"
    )
