"""job.dedup_horizon on the live job: a re-delivery after the horizon counts again.

(Within the horizon it counts once: tests/jobs/test_job_live.py.) The horizon is a TTL in
processing time, so the test lets it pass on the clock: that is the scenario, not a wait for a
result. The re-delivery is the card's newest transaction, so it is not behind the watermark.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from config import Settings
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, Record, has_alert
from tests.polling import wait_until
from udfs.card_token import card_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HORIZON_S = 2


def _dedup_reads(job: LiveJob) -> int:
    """Records the transaction-id de-duplication has read so far (web UI metrics)."""
    dedup = job.client.vertex_ids(job.job_id, "key=[transaction_id]")
    return sum(
        int(v.get("metrics", {}).get("read-records", 0))
        for v in job.client.job(job.job_id)["vertices"]
        if v["id"] in dedup
    )


def test_a_re_delivery_after_the_horizon_counts_again(live_stack: Settings) -> None:
    t0 = dt.datetime.combine(
        dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1), dt.time(2, 0), tzinfo=dt.UTC
    )
    c = Crafted(t0_ms=int(t0.timestamp() * 1000))
    card = c.card()
    # three transactions: at VELOCITY's limit (max_count 3), no alert
    first = [c.txn(card, s) for s in (5, 15, 25)]
    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10], dedup_horizon=f"{HORIZON_S} s")
    try:
        job.produce(Record(v, c._ts(v)) for v in first)
        job.start()
        wait_until(lambda: _dedup_reads(job) >= 3, 120, "the three ids seen", every_s=1)
        seen_at = time.monotonic()
        wait_until(lambda: time.monotonic() - seen_at > HORIZON_S + 1, 10, "the horizon to pass")
        # the newest transaction again (a producer retry), then a far-future transaction of
        # another card that moves the watermark past the windows
        flush = c.txn(c.card(), 3600)
        job.produce([Record(first[-1], c._ts(first[-1])), Record(flush, c._ts(flush))])
        entity = card_token(card, live_stack.card_token_secret())
        alerts = job.read(
            job.settings.kafka.topics.fraud_alerts, has_alert("VELOCITY", entity), 180
        )
        velocity = [a["value"] for a in alerts if a["value"]["rule"] == "VELOCITY"]
        assert velocity, "no VELOCITY alert: the re-delivery was dropped as a duplicate"
        resent = first[-1]["transaction_id"]
        assert velocity[0]["details"]["count"] == 4, velocity
        assert velocity[0]["transaction_ids"].count(resent) == 2, velocity
    finally:
        job.close()
