"""Scaling out changes nothing that a consumer sees: the crafted input (tests/jobs/crafted.py)
read from 4 partitions at parallelism 1, 2 and 4 raises the identical set of `alert_id`s.

Each run is one job on the live stack, one after the other (parallelism 4 takes every slot of
the default TaskManager). The late transaction is left out: whether a record is behind the
watermark depends on how partitions interleave, which is not what this test is about.
"""

from __future__ import annotations

import uuid

import pytest

from config import Settings
from tests.jobs.crafted import Crafted, build
from tests.jobs.live_job import LiveJob
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
PARALLELISMS = (1, 2, 4)


def _alerts_at(base: Settings, crafted: Crafted, parallelism: int) -> list[dict]:
    expected = sum(crafted.expected_alerts.values()) - len(crafted.late_records)
    job = LiveJob.create(base, uuid.uuid4().hex[:10], parallelism, PARTITIONS)
    try:
        # a cancelled job of an earlier test may still hold its slots for a moment
        wait_until(
            lambda: job.client.overview()["slots-available"] >= parallelism,
            60,
            f"{parallelism} free task slots",
            every_s=1,
        )
        job.produce(crafted.records)
        job.start()
        messages = job.read(
            job.settings.kafka.topics.fraud_alerts, lambda m: len(m) >= expected, 240, 8
        )
    finally:
        job.close()
        job.delete_topics()
    return [m["value"] for m in messages]


@pytest.fixture(scope="module")
def alerts_by_parallelism(live_stack: Settings) -> dict[int, list[dict]]:
    crafted = build(PARTITIONS)  # once: its event times are relative to now
    return {p: _alerts_at(live_stack, crafted, p) for p in PARALLELISMS}


@pytest.mark.parametrize("parallelism", PARALLELISMS[1:])
def test_the_same_alert_ids_as_at_parallelism_1(alerts_by_parallelism, parallelism) -> None:
    one = alerts_by_parallelism[1]
    many = alerts_by_parallelism[parallelism]
    assert one, "no alert at parallelism 1"
    assert sorted(a["alert_id"] for a in many) == sorted(a["alert_id"] for a in one)


def test_every_rule_alerts_at_every_parallelism(alerts_by_parallelism) -> None:
    crafted = build(PARTITIONS)
    rules = {rule for rule, _ in crafted.expected_alerts}
    for parallelism, alerts in alerts_by_parallelism.items():
        assert {a["rule"] for a in alerts} == rules, parallelism
