"""The committed offsets are read through a coordinator that may be moving: asked again while it
answers NOT_COORDINATOR (a broker that just started), not for other errors, and not forever.
Progress is that of the job's slowest read of the input that judges transactions."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from config import load_settings
from fraudctl.topics import committed_offsets
from jobs.cluster.input_progress import json_reads


class _Consumer:
    """Answers `committed` with the given errors first, then the offsets."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls = 0

    def committed(self, parts: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return [TopicPartition(p.topic, p.partition, 7) for p in parts]


PARTS = [TopicPartition("t", 0), TopicPartition("t", 1)]


def test_a_moving_coordinator_is_asked_again():
    c = _Consumer(KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    assert [tp.offset for tp in committed_offsets(c, PARTS)] == [7, 7]
    assert c.calls == 3


def test_other_errors_are_raised_at_once():
    c = _Consumer(KafkaError.GROUP_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        committed_offsets(c, PARTS)
    assert c.calls == 1


def test_a_coordinator_that_never_settles_is_given_up_on():
    c = _Consumer(*[KafkaError.NOT_COORDINATOR] * 100)
    with pytest.raises(KafkaException, match="Not coordinator"):
        committed_offsets(c, PARTS, timeout_s=0)
    assert c.calls == 1


@pytest.mark.parametrize(
    ("job", "reads"),
    [
        ({}, ("json", "realtime")),
        ({"per_transaction_read": "shared"}, ("json",)),
        # own, but no per-transaction rule left to read it
        (
            {"rules": {"high_value": {"enabled": False}, "risk_score": {"enabled": False}}},
            ("json",),
        ),
        # RISK_SCORE reads the card's behaviour (card_legs): without HIGH_VALUE no rule is left
        # judging on arrival
        ({"rules": {"high_value": {"enabled": False}}}, ("json",)),
        # HIGH_VALUE alone keeps its read (render.realtime_read)
        ({"rules": {"risk_score": {"enabled": False}}}, ("json", "realtime")),
    ],
)
def test_progress_waits_for_each_read_that_judges_transactions(job, reads):
    assert json_reads(load_settings(job=job)) == reads


def test_a_job_that_keeps_pace_has_caught_up() -> None:
    from jobs.cluster.input_progress import CatchUp

    # Kafka's lag counts what the last fetch left: a few hundred records, or a second's worth
    assert CatchUp(records_behind=300, read_per_s=2_000).caught_up
    assert CatchUp(records_behind=1_800, read_per_s=2_000).caught_up
    assert CatchUp(300, 2_000).describe() == "caught up"
    assert CatchUp(300, 2_000).eta_s == 0.0


def test_a_backlog_says_how_far_behind_and_how_long_at_the_current_rate() -> None:
    from jobs.cluster.input_progress import CatchUp

    behind = CatchUp(records_behind=812_000, read_per_s=6_250)
    assert not behind.caught_up
    assert behind.eta_s == pytest.approx(129.92)
    assert behind.describe() == "812,000 records behind, about 2 min 10 s at 6,250/s"
    stalled = CatchUp(records_behind=50_000, read_per_s=0)
    assert stalled.eta_s is None
    assert stalled.describe() == "50,000 records behind, not reading"


@pytest.mark.parametrize(
    ("seconds", "text"), [(42.4, "42 s"), (200, "3 min 20 s"), (7_500, "2 h 05 min")]
)
def test_durations_read_as_a_person_says_them(seconds, text) -> None:
    from jobs.cluster.input_progress import human_duration

    assert human_duration(seconds) == text
