"""`job.startup_mode: group-offsets`, as a team runs the job without savepoints: the first start
of its consumer groups (nothing committed yet) reads the input from the earliest record, and a
new job in the same groups resumes where the last one committed, judging nothing twice.

Without `properties.auto.offset.reset` (sql_templates/macros.sql.j2 `kafka_source_options`) the
Kafka connector fails the job when a group has no committed offset, so the first start never
raised an alert.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from config import Settings
from jobs.cluster.input_progress import input_progress
from jobs.sql.render import input_reads
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, has_alert
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _every_read_committed_all(s: Settings) -> bool:
    """Every read of the input topic (the judging reads and the dead letters' raw one) has
    committed its last record: a job started in these groups would begin after them."""
    done, total = input_progress(s, tuple(input_reads(s).values()))
    return total > 0 and done == total


@pytest.fixture(scope="module")
def two_runs(live_stack: Settings) -> dict[str, Any]:
    c = Crafted(t0_ms=int(time.time() * 1000) - 5000)
    cards, token = c.named_cards("PR", live_stack.card_token_secret())
    c.add(c.txn(cards["P"], 0, "900.00"))

    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10], startup_mode="group-offsets")
    topic = job.settings.kafka.topics.fraud_alerts
    try:
        job.produce(c.records)
        job.start()
        first = job.read(topic, has_alert("HIGH_VALUE", token["P"]), 180)
        # offsets are committed when a checkpoint completes (every 2 s in these runs)
        wait_until(
            lambda: _every_read_committed_all(job.settings), 60, "the input's offsets committed"
        )
        job.client.cancel(job.job_id)
        wait_until(
            lambda: job.client.job_state(job.job_id) == "CANCELED", 60, "the first job to stop"
        )

        c.records.clear()
        c.add(c.txn(cards["R"], 10, "900.00"))
        job.produce(c.records)
        job.start()  # a new job, no savepoint: only the committed offsets say where to begin
        alerts = job.read(topic, has_alert("HIGH_VALUE", token["R"]), 180, settle_s=10)
    finally:
        job.close()
        job.delete_topics()
    return {"first": first, "alerts": [m["value"] for m in alerts], "token": token}


def test_a_group_with_nothing_committed_starts_from_the_earliest_record(two_runs) -> None:
    assert has_alert("HIGH_VALUE", two_runs["token"]["P"])(two_runs["first"])


def test_the_next_job_resumes_after_the_committed_offsets(two_runs) -> None:
    token = two_runs["token"]
    high_value = [a["entity_id"] for a in two_runs["alerts"] if a["rule"] == "HIGH_VALUE"]
    assert sorted(high_value) == sorted([token["P"], token["R"]]), (
        "a transaction the first job had committed was judged again, or the new one was not"
    )
