"""A backlog spread over several partitions is read a little from every partition in turn.

A job that starts (or restores) behind its input reads a backlog from every partition. With the
Kafka consumer's default fetch (1 MB, some 3,500 records per partition) the source emitted
one partition's chunk after another's; a partition left unread for longer than
`job.source_idle_timeout` was marked idle, the other partitions' watermark passed its records,
and on-time transactions became `late_event` dead letters, lost to every window and pattern
(a cold `fraudctl demo` dead-lettered the first 4,901 records of partition 0 that way). The
source now fetches at most 64 KB per partition at a time.

Here: 40,000 transactions in event-time order over 4 partitions, produced before the job
starts; every fourth is invalid (a negative amount), so the order of the dead letters shows
the order in which the source emitted the partitions. How long a partition's turn lasts does
not depend on the machine's speed, so that is asserted; and no valid transaction may come
out late (whether that happens without the fix depends on how fast the job is; on a cold
TaskManager it did).
"""

from __future__ import annotations

import itertools
import time
import uuid

import pytest

from config import Settings
from jobs.cluster.input_progress import input_progress
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, Record
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
TRANSACTIONS = 40_000
INVALID_EVERY = 4
CARDS = 4_000
STEP_S = 0.05  # event time between consecutive transactions: the backlog spans 2,000 s
# invalid records in one partition's turn: ~50 with 64 KB fetches, ~800 with the 1 MB default
LONGEST_TURN = 300


def _backlog() -> list[Record]:
    crafted = Crafted(t0_ms=int((time.time() - 86_400) * 1000))  # a day ago
    cards = [crafted.card() for _ in range(CARDS)]
    for i in range(TRANSACTIONS):
        value = crafted.txn(cards[i % CARDS], i * STEP_S, amount="12.50")
        if i % INVALID_EVERY == 0:
            value["amount"] = -5
        crafted.add(value, valid=i % INVALID_EVERY != 0)
    return crafted.records


@pytest.fixture(scope="module")
def dead_letters(live_stack: Settings) -> list[dict]:
    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10], partitions=PARTITIONS)
    try:
        # 16 KB record batches (the Java client's default): a fetch returns whole batches, so
        # no fetch limit can split librdkafka's default 1 MB batches (the first fresh-clone
        # run of this test saw turns of ~690 invalid records from them)
        assert job.produce(_backlog(), **{"batch.size": 16_384}) == TRANSACTIONS
        job.start()
        wait_until(
            lambda: input_progress(job.settings)[0] >= TRANSACTIONS,
            300,
            f"the job to read all {TRANSACTIONS:,} transactions",
            every_s=2,
        )
        invalid = TRANSACTIONS // INVALID_EVERY
        messages = job.read(job.settings.kafka.topics.dlq, lambda m: len(m) >= invalid, 120, 5)
    finally:
        job.close()
        job.delete_topics()
    return [m["value"] for m in messages]


def test_a_backlog_is_read_from_every_partition_in_turn(dead_letters) -> None:
    invalid = [d for d in dead_letters if d["reason"] == "nonpositive_amount"]
    assert len(invalid) == TRANSACTIONS // INVALID_EVERY
    order = [d["kafka_partition"] for d in invalid]
    assert set(order) == set(range(PARTITIONS))
    # while every partition still has records (the partitions' sizes differ, and the last
    # one's rest comes in one go)
    first_done = min(max(i for i, p in enumerate(order) if p == q) for q in range(PARTITIONS))
    turns = sorted(len(list(run)) for _, run in itertools.groupby(order[:first_done]))
    assert turns[-1] <= LONGEST_TURN, f"longest turns, in invalid records: {turns[-5:]}"


def test_no_valid_transaction_of_the_backlog_is_made_late(dead_letters) -> None:
    late = [d["payload"]["transaction_id"] for d in dead_letters if d["reason"] == "late_event"]
    assert late == [], f"{len(late)} on-time transactions dead-lettered as late, e.g. {late[:5]}"
