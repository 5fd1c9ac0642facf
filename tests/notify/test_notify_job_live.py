"""The notifier behind the real job on the live stack: a resubmitted job (a new job reading the
input again from the start, as after an upgrade without a savepoint) re-sends every alert with
the same `alert_id` and a new `detected_at`, and no CRITICAL alert is notified twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pymongo import MongoClient

from config import Settings, load_settings
from config.settings import deep_merge
from tests.jobs.crafted import build
from tests.jobs.live_job import LiveJob
from tests.notify.conftest import Hooks, notifier_thread, webhooks
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _notify_overrides(uid: str) -> dict[str, Any]:
    return {
        "mongo": {"database": f"t_notify_{uid}", "server_timeout_ms": 2000},
        "notify": {"consumer_group": f"t_notify_{uid}", "batch_timeout_ms": 200},
    }


def test_a_resubmitted_job_resends_every_alert_and_none_is_notified_twice(
    live_stack: Settings, hooks: Hooks, unique_name: str
) -> None:
    crafted = build()
    first = LiveJob.create(live_stack, unique_name)
    # the same topics, read again from the start by a job of a new group and transactional ids
    again = LiveJob.create(
        live_stack,
        unique_name,
        consumer_group=f"fraud-test-{unique_name}-again",
        transactional_id_prefix=f"t{unique_name}-again",
    )
    settings = load_settings(**deep_merge(first.overrides, _notify_overrides(unique_name)))
    topic = first.settings.kafka.topics.fraud_alerts
    # every alert of the crafted input but the late transaction's (not sent here)
    n = sum(crafted.expected_alerts.values()) - len(crafted.late_records)
    try:
        first.produce(crafted.records)
        first.start()
        alerts = [m["value"] for m in first.read(topic, lambda m: len(m) >= n, 240, 4)]
        critical = {a["alert_id"] for a in alerts if a["severity"] == "CRITICAL"}
        assert critical, "the crafted input raises CRITICAL alerts"
        with notifier_thread(settings, webhooks(hooks, oncall="/hooks/oncall")) as stats:
            wait_until(lambda: stats.sent >= len(critical), 90, "every CRITICAL alert sent")
            first.close()
            again.start()
            wait_until(
                lambda: stats.duplicate_skipped >= len(critical),
                240,
                "the resubmitted job's copies of the CRITICAL alerts, skipped",
                every_s=1,
            )
        both = [m["value"] for m in again.read(topic, lambda m: len(m) >= 2 * n, 60)]
    finally:
        first.close()
        again.close()
        first.delete_topics()
        with MongoClient(settings.mongo.uri, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(settings.mongo.database)
    # the job did re-send: each alert twice, the copy with a later detected_at
    copies = Counter(a["alert_id"] for a in both)
    assert set(copies) == {a["alert_id"] for a in alerts} and set(copies.values()) == {2}
    detected = {}
    for a in both:
        detected.setdefault(a["alert_id"], []).append(a["detected_at"])
    assert all(times[0] < times[1] for times in detected.values())
    # ... and each CRITICAL one reached the destination once
    assert {
        alert_id: hooks.count_ok("/hooks/oncall", alert_id) for alert_id in critical
    } == dict.fromkeys(critical, 1)
    assert stats.sent == len(critical)
