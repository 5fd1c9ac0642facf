"""`fraudctl upgrade` on the running job: a structural change (VELOCITY's window 5 min -> 10 min)
is applied from a savepoint, keeping the state Flink can map, and the report says so.

Before the upgrade the job reads three purchases of card Q (under VELOCITY's limit in any
window) and a 900.00 purchase of card P. After it: a fourth purchase of Q six minutes after the
first three, which only a 10-minute window holding the first three (restored state) counts as
four, a 900.00 purchase of card R, and a later transaction that moves the watermark past every
window.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from config import Settings
from config.settings import deep_merge
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, has_alert

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def upgraded(live_stack: Settings) -> dict[str, Any]:
    c = Crafted(t0_ms=int(time.time() * 1000) - 5000)
    cards, token = c.named_cards("QPRZ", live_stack.card_token_secret())
    for i in range(3):
        c.add(c.txn(cards["Q"], i))
    c.add(c.txn(cards["P"], 3, "900.00"))

    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10])
    new_job_id = None
    try:
        job.produce(c.records)
        job.start()
        topic = job.settings.kafka.topics.fraud_alerts
        job.read(topic, has_alert("HIGH_VALUE", token["P"]), 180)

        job.overrides = deep_merge(
            job.overrides, {"job": {"rules": {"velocity": {"window": "10 min"}}}}
        )
        report = json.loads(job.fraudctl("upgrade", "--json"))
        new_job_id = report["new_job_id"]

        c.records.clear()
        c.add(c.txn(cards["Q"], 360))
        c.add(c.txn(cards["R"], 361, "900.00"))
        c.add(c.txn(cards["Z"], 900))
        job.produce(c.records)
        alerts = job.read(topic, has_alert("VELOCITY", token["Q"]), 180, settle_s=5)
    finally:
        if new_job_id:
            job.job_id = new_job_id
        job.close()
        job.delete_topics()
    return {"report": report, "alerts": [m["value"] for m in alerts], "token": token}


def test_the_new_window_length_counts_transactions_from_before_the_upgrade(upgraded) -> None:
    (alert,) = [a for a in upgraded["alerts"] if a["rule"] == "VELOCITY"]
    assert alert["entity_id"] == upgraded["token"]["Q"]
    assert alert["details"]["count"] == 4


def test_nothing_is_judged_twice_or_lost_across_the_upgrade(upgraded) -> None:
    token = upgraded["token"]
    alerts = upgraded["alerts"]
    assert len({a["alert_id"] for a in alerts}) == len(alerts), "an alert was sent again"
    assert {a["entity_id"] for a in alerts if a["rule"] == "HIGH_VALUE"} == {
        token["P"],
        token["R"],
    }


def test_the_report_names_what_kept_its_state(upgraded) -> None:
    report = upgraded["report"]
    assert report["savepoint"] and report["new_job_id"] != report["old_job_id"]
    assert any(name.startswith("Source: transactions") for name in report["restored"])
    assert set(report["started_empty"]).isdisjoint(report["restored"])
