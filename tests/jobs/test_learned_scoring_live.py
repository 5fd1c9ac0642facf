"""Learned scoring on the real stack: RISK_SCORE scores each transaction with the card's
behaviour features by the promoted model, a promotion applies from its event time without a
restart, and the features the live job scored a transaction with are the ones training
computes for it from the lake (jobs/model/features.py: the same card_legs view, replayed).

One job (scoring.enabled) reads generated traffic (the producer's generator, behavioural fraud
and look-alikes included) with RISK_SCORE's threshold at 0, so the first transaction of every
card and cooldown period alerts and carries its features in `details.behaviour`. Then
`fraudctl model promote 0` (the weighted sum) and a second stretch of traffic after the
promotion's effective time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import pytest

from config import Settings, load_settings
from jobs.model.features import lake_features
from jobs.model.store import ModelStore
from producer.generator import labelled_stream
from producer.population import luhn_check_digit
from tests.jobs.live_job import LiveJob, Record, remove_lake
from tests.polling import wait_until
from udfs.behaviour_features import MODEL_FEATURES
from udfs.risk_score import RiskParams

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 1500
POPULATION = 150


def _records(settings: Settings, seed: int, start_ms: int) -> list[Record]:
    events, _ = labelled_stream(
        EVENTS,
        seed,
        settings.card_token_secret(),
        population=POPULATION,
        start_ms=start_ms,
        events_per_second=2.0,
        fraud_rate=0.05,
        lookalike_rate=0.05,
    )
    return [
        Record(e, int(dt.datetime.fromisoformat(e["event_time"]).timestamp() * 1000), e["user_id"])
        for e in sorted(events, key=lambda e: e["event_time"])
    ]


def _risk_alerts(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["value"] for m in msgs if m["value"]["rule"] == "RISK_SCORE"]


def _marker(like: Record, txn_id: str, ms: int, card_number: str) -> Record:
    """A transaction of a card the stream does not hold, at `ms`: the first of its card, so
    with threshold 0 it alerts once the watermark passes it."""
    return Record(
        {
            **like.value,
            "transaction_id": txn_id,
            "card_number": card_number,
            "event_time": _iso(ms),
        },
        ms,
        like.key,
    )


def _alerted(txn_id: str):  # type: ignore[no-untyped-def]
    return lambda msgs: any(txn_id in a["transaction_ids"] for a in _risk_alerts(msgs))


@pytest.fixture(scope="module")
def scored(live_stack: Settings) -> dict[str, Any]:
    default = live_stack.job.rules.risk_score.model_version
    assert default > 0, "the config's default model is a trained one (models/)"
    assert ModelStore.from_settings(live_stack).validate(default)
    uid = uuid.uuid4().hex[:10]
    job = LiveJob.create(
        live_stack, uid, rules={"risk_score": {"threshold": 0.0, "model_version": default}}
    )
    job.overrides["scoring"] = {"enabled": True}
    job.settings = load_settings(**job.overrides)
    cards = [f"4000000000000{n:02d}" for n in range(4)]
    cards = [c[:-1] + luhn_check_digit(c[:-1]) for c in cards]
    try:
        # the first stretch ends before now, the second starts after the promotion
        first = _records(job.settings, seed=101, start_ms=int(time.time() * 1000) - 4 * 3600_000)
        end_first = first[-1].timestamp_ms
        job.produce(first)
        job.produce([_marker(first[-1], f"{uid}-m1", end_first + 60_000, cards[0])])
        job.produce([_marker(first[-1], f"{uid}-m2", end_first + 120_000, cards[1])])
        job.start()
        topic = job.settings.kafka.topics.fraud_alerts
        # the first marker is scored once the second moved the watermark past it: so is
        # every transaction before it
        job.read(topic, _alerted(f"{uid}-m1"), 240)
        promoted = json.loads(job.fraudctl("model", "promote", "0", "--json"))
        effective = dt.datetime.fromisoformat(promoted["effective_at"].replace("Z", "+00:00"))
        effective_ms = int(effective.timestamp() * 1000)
        wait_until(lambda: time.time() * 1000 > effective_ms, 10, "the promotion's effective time")
        second = _records(job.settings, seed=202, start_ms=effective_ms + 1000)
        end_second = second[-1].timestamp_ms
        job.produce(second)
        job.produce([_marker(second[-1], f"{uid}-m3", end_second + 60_000, cards[2])])
        job.produce([_marker(second[-1], f"{uid}-m4", end_second + 3600_000, cards[3])])
        msgs = job.read(topic, _alerted(f"{uid}-m3"), 240, 5)
        start = dt.datetime.fromtimestamp(first[0].timestamp_ms / 1000, dt.UTC)
        end = dt.datetime.fromtimestamp((end_first + 1) / 1000, dt.UTC)
        # the lake has the first stretch once a checkpoint (every 2 s here) committed it
        wait_until(
            lambda: _lake_rows(job.settings, start, end) >= len(first),
            90,
            "the first stretch in the lake",
            every_s=2,
        )
        return {
            "default": default,
            "alerts": _risk_alerts(msgs),
            "first": first,
            "second": second,
            "features": lake_features(job.settings, start, end),
        }
    finally:
        job.close()
        remove_lake(job.settings)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _scored_up_to(msgs: list[dict[str, Any]], ms: int) -> bool:
    """Some RISK_SCORE alert is about a transaction at or after `ms` (the watermark passed)."""
    return any(
        dt.datetime.fromisoformat(a["event_time"]).timestamp() * 1000 >= ms
        for a in _risk_alerts(msgs)
    )


def _lake_rows(settings: Settings, start: dt.datetime, end: dt.datetime) -> int:
    from jobs.history.lake import LakeError, transactions

    try:
        return transactions(settings, start, end).num_rows
    except LakeError:
        return 0


def test_every_alert_carries_its_model_version_and_at_most_three_reasons(scored):
    alerts = scored["alerts"]
    assert alerts
    names = {0: set(RiskParams().weights), scored["default"]: set(MODEL_FEATURES)}
    for a in alerts:
        d = a["details"]
        assert d["model_version"] in names
        assert d["threshold"] == 0.0
        assert 0.0 <= a["score"] <= 1.0
        # the features that raised the score (none when none did)
        assert len(d["reasons"]) <= 3 and len(set(d["reasons"])) == len(d["reasons"]), d
        assert set(d["reasons"]) <= names[d["model_version"]], d
    assert any(len(a["details"]["reasons"]) == 3 for a in alerts)


def test_a_promotion_applies_from_its_event_time_without_a_restart(scored):
    by_time = {
        a["transaction_ids"][0]: (a["event_time"], a["details"]["model_version"])
        for a in scored["alerts"]
    }
    first = {r.value["transaction_id"] for r in scored["first"]}
    second = {r.value["transaction_id"] for r in scored["second"]}
    before = {v for t, (_, v) in by_time.items() if t in first}
    after = {v for t, (_, v) in by_time.items() if t in second}
    assert before == {scored["default"]}
    assert after == {0}


def test_the_features_the_job_scored_with_are_the_ones_training_computes(scored):
    features = scored["features"].set_index("transaction_id")
    first = {r.value["transaction_id"] for r in scored["first"]}
    live = {
        a["transaction_ids"][0]: json.loads(a["details"]["behaviour"])
        for a in scored["alerts"]
        if a["transaction_ids"][0] in first
    }
    assert len(live) >= POPULATION // 2, len(live)
    mismatched = []
    for txn, behaviour in live.items():
        trained = features.loc[txn]
        for name, value in behaviour.items():
            got = trained[name]
            same = (value is None and got != got) or got == value
            if not same:
                mismatched.append((txn, name, value, got))
    assert not mismatched, mismatched[:10]
