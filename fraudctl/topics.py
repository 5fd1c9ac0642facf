"""Kafka topics, the one way: creating and deleting them (the stack, the producer, benchmarks
and tests call it) and how far a consumer group has read them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from config import Settings
from config.kafka import client_config

# fraud_rules: compaction keeps the newest version of each rule, and every version for at least
# a week, so a replay of the last week's input sees the parameters it was judged by
RULES_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(7 * 24 * 3600_000)}


class TopicError(RuntimeError):
    """A topic could not be created: the broker is unreachable or refused it."""


def ensure_topics(
    bootstrap_servers: str,
    partitions: Mapping[str, int],
    timeout_s: float = 30,
    *,
    config: Mapping[str, str] | None = None,
    logger: logging.Logger | None = None,
) -> list[str]:
    """Create the topics of `partitions` (name -> partition count) that do not exist yet, with
    replication factor 1 and topic `config`; return the names created.

    A topic that exists, or that another client creates meanwhile, is fine and left as it is
    (its partition count is not checked). `logger` receives librdkafka's own log lines.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config(bootstrap_servers, {"logger": logger} if logger else None))
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise TopicError(
            f"Kafka at {bootstrap_servers} is unreachable: {exc.args[0].str()}"
        ) from exc
    wanted = [
        NewTopic(name, num_partitions=n, replication_factor=1, config=dict(config or {}))
        for name, n in partitions.items()
        if name not in existing
    ]
    if not wanted:
        return []
    # with an operation timeout the broker answers once the topics exist, so whoever uses
    # them next (a producer, a job) finds them
    futures = admin.create_topics(
        wanted, operation_timeout=timeout_s / 2, request_timeout=timeout_s
    )
    return _answered(futures, "creating", KafkaError.TOPIC_ALREADY_EXISTS, timeout_s)


def delete_topics(bootstrap_servers: str, names: Iterable[str], timeout_s: float = 30) -> list[str]:
    """Delete the topics `names`; return those deleted. A topic that does not exist (never
    created, or deleted already) is skipped; any other refusal raises `TopicError`. The broker
    removes the data asynchronously after answering."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient

    names = list(dict.fromkeys(names))
    if not names:
        return []
    admin = AdminClient(client_config(bootstrap_servers))
    futures = admin.delete_topics(names, operation_timeout=timeout_s / 2, request_timeout=timeout_s)
    return _answered(futures, "deleting", KafkaError.UNKNOWN_TOPIC_OR_PART, timeout_s)


def _answered(futures: Mapping[str, Any], doing: str, fine: int, timeout_s: float) -> list[str]:
    """The topics whose admin request (`futures`, topic -> future) succeeded. The error code
    `fine` (the topic exists already, or is gone already) skips a topic; any other error, or
    no answer within `timeout_s`, raises `TopicError`."""
    from confluent_kafka import KafkaException

    done = []
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() != fine:
                raise TopicError(f"{doing} topic {name} failed: {err.str()}") from exc
        except TimeoutError as exc:
            raise TopicError(f"{doing} topic {name}: no answer in {timeout_s:g} s") from exc
        else:
            done.append(name)
    return done


def committed_offsets(consumer: Any, parts: list[Any], timeout_s: float = 30.0) -> list[Any]:
    """`consumer.committed(parts)`, asked again (for at most `timeout_s`) while the group's
    coordinator is moving or still loading: a broker answers NOT_COORDINATOR for a while after
    it starts or when a partition of its offsets topic changes leader."""
    from confluent_kafka import KafkaError, KafkaException

    coordinator_unsettled = {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.committed(parts, timeout=10)
        except KafkaException as exc:
            if exc.args[0].code() not in coordinator_unsettled or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def group_progress(s: Settings, group: str, topics: Sequence[str]) -> tuple[int, int]:
    """(records of `topics` the consumer group `group` has committed, records in them): how
    far a group has read, its lag the difference."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(client_config(s.kafka.bootstrap_servers, {"group.id": group}))
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in c.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        committed = sum(max(tp.offset, 0) for tp in committed_offsets(c, parts))
        end = sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
        return committed, end
    finally:
        c.close()
