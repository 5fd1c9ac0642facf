"""A backlog spread over several partitions is read without making on-time records late.

A job that starts (or restores) behind its input reads a backlog from every partition. If it
took one large chunk of a partition after another's, a partition left unread for longer than
`job.source_idle_timeout` was marked idle, the other partitions' watermark passed its records,
and on-time transactions became `late_event` dead letters, lost to every window and pattern
(a cold `fraudctl demo` dead-lettered the first 4,901 records of partition 0 that way). The
source now fetches a little from every partition in turn.

Here: 40,000 valid transactions in event-time order, spread over 4 partitions and produced
before the job starts, read with a 1 s idle timeout (a tenth of a second per partition turn
with the fix; seconds without it). Not one of them may come out as a late dead letter.
"""

from __future__ import annotations

import time
import uuid

import pytest

from config import Settings
from jobs.input_progress import input_progress
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, Record
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
TRANSACTIONS = 40_000
CARDS = 4_000
STEP_S = 0.05  # event time between consecutive transactions: the backlog spans 2,000 s


def _backlog() -> list[Record]:
    crafted = Crafted(t0_ms=int((time.time() - 86_400) * 1000))  # a day ago
    cards = [crafted.card() for _ in range(CARDS)]
    records = []
    for i in range(TRANSACTIONS):
        value = crafted.txn(cards[i % CARDS], i * STEP_S, amount="12.50")
        records.append(Record(value, crafted.t0_ms + int(i * STEP_S * 1000), key=value["user_id"]))
    return records


def test_a_backlog_over_four_partitions_leaves_no_on_time_record_late(
    live_stack: Settings,
) -> None:
    job = LiveJob.create(
        live_stack, uuid.uuid4().hex[:10], partitions=PARTITIONS, source_idle_timeout="1 s"
    )
    try:
        assert job.produce(_backlog()) == TRANSACTIONS
        job.start()
        wait_until(
            lambda: input_progress(job.settings)[0] >= TRANSACTIONS,
            300,
            f"the job to read all {TRANSACTIONS:,} transactions",
            every_s=2,
        )
        dlq = job.read(job.settings.kafka.topics.dlq, lambda m: True, 30, settle_s=10)
    finally:
        job.close()
        job.delete_topics()
    late = [
        m["value"]["payload"]["transaction_id"] for m in dlq if m["value"]["reason"] == "late_event"
    ]
    assert late == [], f"{len(late)} on-time transactions dead-lettered as late, e.g. {late[:5]}"
    assert dlq == [], "valid transactions only: nothing else belongs in the DLQ"
