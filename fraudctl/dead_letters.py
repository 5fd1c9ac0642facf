"""What the job dead-lettered: the DLQ topic counted by reason (`fraudctl dlq`).

Every invalid record and every transaction too late for the windows and patterns becomes one
message on `kafka.topics.dlq` (docs/contract.md). With at-least-once sinks a fault can write a
message twice, so records are counted once per input position (partition, offset).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from config import Settings
from config.kafka import client_config


def read_dead_letters(
    s: Settings, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Every dead letter in the DLQ topic (read_committed), each input record once (a copy
    re-sent after a fault is skipped); `on_progress(read, total)` is called as it goes."""
    from confluent_kafka import Consumer, TopicPartition

    topic = s.kafka.topics.dlq
    c = Consumer(
        client_config(
            s.kafka.bootstrap_servers,
            {
                "group.id": "fraudctl-dlq-reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            },
        )
    )
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            raise RuntimeError(f"cannot read topic {topic!r}: {meta.error.str()}")
        ends = {}
        for p in meta.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = (low, high)
        total = sum(high - low for low, high in ends.values())
        c.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        seen: set[tuple[Any, Any]] = set()
        read = 0
        pending = set(ends)
        while pending:
            msg = c.poll(1.0)
            if msg is None:
                # transaction markers and aborted records take offsets: check positions
                done = c.position([TopicPartition(topic, p) for p in pending])
                pending -= {tp.partition for tp in done if tp.offset >= ends[tp.partition][1]}
                continue
            if msg.error():
                raise RuntimeError(f"reading {topic!r}: {msg.error().str()}")
            read += 1
            if msg.offset() + 1 >= ends[msg.partition()][1]:
                pending.discard(msg.partition())
            if on_progress and read % 1000 == 0:
                on_progress(read, total)
            letter = json.loads(msg.value())
            origin = (letter.get("kafka_partition"), letter.get("kafka_offset"))
            if origin not in seen:
                seen.add(origin)
                yield letter
        if on_progress:
            on_progress(read, total)
    finally:
        c.close()


def count_by_reason(
    s: Settings, on_progress: Callable[[int, int], None] | None = None
) -> Counter[str]:
    """Dead letters per reason, each input record once."""
    return Counter(d.get("reason", "unknown") for d in read_dead_letters(s, on_progress))


def late_transaction_ids(s: Settings) -> set[str]:
    """Ids of the transactions dead-lettered as `late_event`."""
    return {
        str(d["payload"].get("transaction_id"))
        for d in read_dead_letters(s)
        if d.get("reason") == "late_event" and isinstance(d.get("payload"), dict)
    }
