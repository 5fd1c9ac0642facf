"""A job the cluster has too few task slots for is refused with what to change, and cancelled.

A standalone cluster (the local stack) never adds slots, so such a job would wait forever
holding the slots it got; before, `fraudctl submit` waited 180 s and said only that the
tasks did not start.
"""

from __future__ import annotations

import re
import uuid

import pytest

from config import Settings
from jobs.cluster.flink_client import FlinkClient
from tests.jobs.live_job import LiveJob
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _submit_refused(job: LiveJob) -> str:
    """Run `fraudctl submit` for `job`, expect it to fail; its stderr on one line."""
    proc = job.fraudctl_run("submit")
    assert proc.returncode != 0, proc.stdout
    return " ".join(proc.stderr.split())


def _cancelled_job(client: FlinkClient, message: str) -> str:
    found = re.search(r"job ([0-9a-f]{32}) was cancelled", message)
    assert found, message
    assert client.wait_for_state(found.group(1), {"CANCELED"}, 60) == "CANCELED"
    return found.group(1)


def _all_slots_free(client: FlinkClient) -> int:
    """Wait for every slot to be free (cancelled jobs of earlier tests release theirs)."""
    total = client.overview()["slots-total"]
    wait_until(
        lambda: client.overview()["slots-available"] == total, 60, "all slots free", every_s=1
    )
    return total


def test_a_job_wider_than_the_cluster_is_refused_and_cancelled(live_stack: Settings):
    client = FlinkClient(live_stack.flink.jobmanager)
    total = _all_slots_free(client)
    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10], parallelism=total + 1)
    try:
        message = _submit_refused(job)
        assert f"needs {total + 1} task slots" in message
        assert f"the cluster has {total} in all" in message
        assert "flink.parallelism" in message and "stack.taskmanager_slots" in message
        job.job_id = _cancelled_job(client, message)
        wait_until(lambda: client.overview()["slots-available"] == total, 60, "slots given back")
    finally:
        job.close()
        job.delete_topics()


def test_a_job_that_other_jobs_leave_too_few_slots_for_names_them(live_stack: Settings):
    client = FlinkClient(live_stack.flink.jobmanager)
    total = _all_slots_free(client)
    if total < 2:
        pytest.skip(f"needs a cluster of 2 or more slots (this one has {total})")
    holder = LiveJob.create(live_stack, uuid.uuid4().hex[:10], parallelism=total - 1)
    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10], parallelism=2)
    try:
        holder.start()
        message = _submit_refused(job)
        assert f"needs 2 task slots; the cluster has {total} and other jobs hold {total - 1}" in (
            message
        )
        assert f"{holder.settings.flink.job_name} {holder.job_id} ({total - 1})" in message
        job.job_id = _cancelled_job(client, message)
        assert client.job_state(holder.job_id) == "RUNNING"  # the holder is left alone
    finally:
        for j in (job, holder):
            j.close()
            j.delete_topics()
