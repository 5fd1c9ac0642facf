"""How far the running job has read its input (from the offsets each read commits, and from its
source's lag metrics) and how far the MongoDB sink has read the job's outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from config import Settings
from fraudctl.topics import group_progress


def json_reads(s: Settings) -> tuple[str, ...]:
    """The job's reads of the input topic that judge transactions, by consumer-group suffix
    (jobs.sql.render.INPUT_READS): every read but the `raw` one, which only catches records that
    are not JSON."""
    from jobs.sql.render import INPUT_READS, input_reads

    unparsed = INPUT_READS["transactions_unparsed"]
    return tuple(g for g in input_reads(s).values() if g != unparsed)


def input_progress(s: Settings, sources: Sequence[str] | None = None) -> tuple[int, int]:
    """(input records the slowest of the job's `sources` (consumer-group suffixes of
    jobs.sql.render.INPUT_READS; default `json_reads`) has committed, records in the input topic).
    The job commits its offsets at each checkpoint, so this is how far it has read."""
    progress = [
        group_progress(s, f"{s.job.consumer_group}-{source}", [s.kafka.topics.transactions])
        for source in sources or json_reads(s)
    ]
    return min(done for done, _ in progress), max(total for _, total in progress)


def sink_progress(s: Settings) -> tuple[int, int]:
    """(records of fraud_alerts and window_stats `fraudctl sink` has written to MongoDB and
    committed, records in those topics)."""
    t = s.kafka.topics
    return group_progress(s, s.mongo.consumer_group, [t.fraud_alerts, t.window_stats])


# a read this close to the end of its input has caught up: Kafka's lag metric counts what the
# last fetch left, so a job that keeps pace shows a few hundred records behind at any moment
CAUGHT_UP_RECORDS = 1_000


@dataclass(frozen=True)
class CatchUp:
    """How far a running job's furthest-behind read of the input trails the topic, from the
    source's own metrics (Kafka's lag, `pendingRecords`, and Flink's one-minute read rate)."""

    records_behind: int
    read_per_s: float

    @property
    def caught_up(self) -> bool:
        return self.records_behind <= max(CAUGHT_UP_RECORDS, self.read_per_s)

    @property
    def eta_s(self) -> float | None:
        """Seconds to read what is behind at the current rate (if nothing more arrives)."""
        if self.caught_up:
            return 0.0
        return self.records_behind / self.read_per_s if self.read_per_s > 0 else None

    def describe(self) -> str:
        if self.caught_up:
            return "caught up"
        if self.eta_s is None:
            return f"{self.records_behind:,} records behind, not reading"
        return (
            f"{self.records_behind:,} records behind, about {human_duration(self.eta_s)} "
            f"at {self.read_per_s:,.0f}/s"
        )


def catch_up(client: Any, job_id: str) -> CatchUp | None:
    """The job's `CatchUp` through its JobManager (`client`, a FlinkClient); None until a read
    of the input has fetched once (Kafka reports its lag from then on)."""
    behind = client.source_metric(job_id, "pendingRecords", "sum")
    if not behind:
        return None
    rates = client.source_metric(job_id, "numRecordsOutPerSecond", "sum")
    source = max(behind, key=lambda name: behind[name])
    return CatchUp(int(behind[source]), rates.get(source, 0.0))


def human_duration(seconds: float) -> str:
    """`2 h 05 min`, `3 min 20 s` or `42 s`: a duration for a person."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"
