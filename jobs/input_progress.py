"""How far the running job has read its input topic, from the offsets it commits."""

from __future__ import annotations

from config import Settings


def input_progress(s: Settings, source: str = "json") -> tuple[int, int]:
    """(input records the job's `source` ("json" or "raw") has committed, records in the input
    topic). The job commits its offsets at each checkpoint, so this is how far it has read."""
    from confluent_kafka import Consumer, TopicPartition

    topic = s.kafka.topics.transactions
    group = f"{s.job.consumer_group}-{source}"
    c = Consumer({"bootstrap.servers": s.kafka.bootstrap_servers, "group.id": group})
    try:
        parts = [
            TopicPartition(topic, p)
            for p in c.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        committed = sum(max(tp.offset, 0) for tp in c.committed(parts, timeout=10))
        end = sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
        return committed, end
    finally:
        c.close()
