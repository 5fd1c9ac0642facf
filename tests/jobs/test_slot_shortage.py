"""`slot_shortage`: when a job's waiting tasks can never get their task slots, and what it says."""

from __future__ import annotations

from jobs.flink_client import SlotUse, slot_shortage

JOB = "a" * 32
OTHER = "b" * 32


def test_a_job_wider_than_the_cluster_is_short_whatever_is_free():
    message = slot_shortage(JOB, 5, SlotUse(total=4, held={}))
    assert message is not None
    assert "needs 5 task slots" in message and "has 4 in all" in message
    assert "flink.parallelism" in message


def test_slots_held_by_other_jobs_are_named_with_their_count():
    slots = SlotUse(total=4, held={OTHER: 3, JOB: 1})
    message = slot_shortage(JOB, 2, slots, {OTHER: "fraud-detection"})
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
