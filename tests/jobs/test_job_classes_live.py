"""A session cluster runs job after job: a job that ended leaves no classes behind.

PyFlink ships flink-python (Beam, gRPC, Arrow: 42 MB) with each job unless the TaskManagers
have it in lib/ (stack/install.py). Each job then loaded it into a class loader of its own that
outlived the job: about 48 MB of metaspace per job, and after five jobs the TaskManager's tasks
failed with `OutOfMemoryError: Metaspace` (the suite's CI run of 2026-12-07).
"""

from __future__ import annotations

import time
import uuid

import pytest

from config import Settings
from jobs.cluster.flink_client import FlinkClient
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, has_alert

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# what a job may leave until the next collection: its generated code (about 2 MB measured),
# against the 48 MB a job's own copy of flink-python took
LEFT_PER_JOB = 16 * 2**20


def _metaspace(client: FlinkClient) -> float:
    return sum(tm["metaspace_used"] for tm in client.taskmanager_jvm().values())


def _run_once(live_stack: Settings, client: FlinkClient) -> None:
    """A job that judges a transaction (its Python worker and sinks at work), then cancelled."""
    c = Crafted(t0_ms=int(time.time() * 1000) - 5000)
    cards, token = c.named_cards("D", live_stack.card_token_secret())
    c.add(c.txn(cards["D"], 0, "900.00"))
    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10])
    try:
        job.produce(c.records)
        job.start()
        job.read(job.settings.kafka.topics.fraud_alerts, has_alert("HIGH_VALUE", token["D"]), 180)
    finally:
        job.close()
        job.delete_topics()
    assert job.job_id and client.wait_for_state(job.job_id, {"CANCELED"}, 60) == "CANCELED"


def test_jobs_run_one_after_another_leave_no_classes_behind(live_stack: Settings):
    client = FlinkClient(live_stack.flink.jobmanager)
    _run_once(live_stack, client)  # the first job loads what every job shares
    before = _metaspace(client)
    for _ in range(2):
        _run_once(live_stack, client)
    grown = _metaspace(client) - before
    assert grown < 2 * LEFT_PER_JOB, f"two jobs left {grown / 2**20:.0f} MB of metaspace"
