"""`slot_shortage`: when a job's waiting tasks can never get their task slots, and what it says;
`wait_until_running`: when it checks, and that it cancels such a job (REST answers scripted)."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.cluster.flink_client import (
    FlinkClient,
    FlinkError,
    NotEnoughSlots,
    SlotUse,
    slot_shortage,
)

JOB = "a" * 32
OTHER = "b" * 32


def test_a_job_wider_than_the_cluster_is_short_whatever_is_free():
    message = slot_shortage(JOB, 5, SlotUse(total=4, held={}))
    assert message is not None
    assert "needs 5 task slots" in message and "has 4 in all" in message
    assert "flink.parallelism" in message


def test_slots_held_by_other_jobs_are_named_with_their_count():
    slots = SlotUse(total=4, held={OTHER: 3, JOB: 1}, names={OTHER: "fraud-detection"})
    message = slot_shortage(JOB, 2, slots)
    assert message is not None
    assert "other jobs hold 3" in message
    assert f"fraud-detection {OTHER} (3)" in message


def test_the_jobs_own_slots_do_not_count_against_it():
    # the waiting job already got 3 of the 4 slots it needs: the 4th is still free
    assert slot_shortage(JOB, 4, SlotUse(total=4, held={JOB: 3})) is None


def test_enough_slots_left_by_other_jobs_is_no_shortage():
    assert slot_shortage(JOB, 2, SlotUse(total=4, held={OTHER: 2})) is None


def test_no_taskmanager_yet_is_not_judged():
    # a TaskManager that is (re)starting has not registered its slots
    assert slot_shortage(JOB, 1, SlotUse(total=0, held={})) is None


class _Cluster(FlinkClient):
    """A FlinkClient whose REST answers are scripted: the job's states in turn (the last one
    repeats), a fixed slot use; it records cancels."""

    def __init__(self, states: list[tuple[str, str]], slots: SlotUse) -> None:
        super().__init__("127.0.0.1:1")
        self.states, self.slots, self.cancelled = states, slots, []

    def job(self, job_id: str) -> dict[str, Any]:
        state, tasks = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"state": state, "vertices": [{"status": tasks, "parallelism": 2}]}

    def slot_use(self) -> SlotUse:
        return SlotUse(self.slots.total, self.slots.held, names={OTHER: "holder"})

    def root_cause(self, job_id: str) -> str | None:
        return "Caused by: boom"

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


def test_a_job_short_of_slots_is_cancelled_after_the_grace():
    cluster = _Cluster([("RUNNING", "SCHEDULED")], SlotUse(total=2, held={OTHER: 1}))
    with pytest.raises(NotEnoughSlots, match=f"(?s)holder {OTHER} \\(1\\).*was cancelled"):
        cluster.wait_until_running(JOB, timeout_s=5, slots_grace_s=0)
    assert cluster.cancelled == [JOB]


def test_tasks_waiting_with_enough_slots_are_waited_for():
    states = [("RUNNING", "SCHEDULED")] * 3 + [("RUNNING", "RUNNING")]
    cluster = _Cluster(states, SlotUse(total=4, held={OTHER: 1}))
    cluster.wait_until_running(JOB, timeout_s=10, slots_grace_s=0)
    assert cluster.cancelled == []


def test_a_job_that_fails_after_it_ran_reports_its_cause_and_is_left_to_flink():
    states = [("RUNNING", "SCHEDULED"), ("RESTARTING", "FAILED")]
    cluster = _Cluster(states, SlotUse(total=4, held={}))
    with pytest.raises(FlinkError, match="RESTARTING: Caused by: boom") as failure:
        cluster.wait_until_running(JOB, timeout_s=10, slots_grace_s=60)
    assert not isinstance(failure.value, NotEnoughSlots)
    assert cluster.cancelled == []


def test_restarting_for_want_of_slots_is_named_without_waiting_for_the_grace():
    states = [("RUNNING", "SCHEDULED"), ("RESTARTING", "FAILED")]
    cluster = _Cluster(states, SlotUse(total=2, held={OTHER: 1}))
    with pytest.raises(NotEnoughSlots):
        cluster.wait_until_running(JOB, timeout_s=10, slots_grace_s=60)
    assert cluster.cancelled == [JOB]


def test_no_slot_check_on_a_cluster_that_adds_taskmanagers():
    cluster = _Cluster([("RUNNING", "SCHEDULED")], SlotUse(total=1, held={}))
    with pytest.raises(FlinkError, match="did not all start in time") as failure:
        cluster.wait_until_running(JOB, timeout_s=1.5, slots_grace_s=None)
    assert not isinstance(failure.value, NotEnoughSlots)
    assert cluster.cancelled == []
