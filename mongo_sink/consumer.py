"""The Kafka -> MongoDB consumer behind `fraudctl sink`.

Guarantees (each has an integration test in tests/mongo_sink/):

- reads `fraud_alerts` and `window_stats` with `isolation.level=read_committed`, so it only
  sees what the Flink job's transactional sink committed;
- one `consume()` call is one batch; its documents are written with idempotent writes keyed
  by `_id` (see store.py) and the batch's offsets are committed only after MongoDB
  acknowledged every write. A crash at any point replays at most the open batch, and
  replaying rewrites identical documents: nothing missing, nothing twice;
- MongoDB unreachable: the same batch is retried with exponential back-off (one warning,
  then a reminder every 30 s), never skipped, never committed;
- a record that cannot be decoded goes to `sink_dead_letters` (`_id` = topic|partition|offset)
  with its raw payload and a reason, and the sink goes on;
- `stop_event` (set by SIGTERM/SIGINT in the CLI) ends the loop after the current batch is
  written and committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from config import Settings
from config.kafka import client_config
from fraudctl import mongo
from mongo_sink import metrics, store
from mongo_sink.documents import DecodeError, Kind, RecordRef, dead_letter, decode

log = logging.getLogger("mongo_sink")

REMINDER_EVERY_S = 30.0
PROGRESS_EVERY_S = 10.0


@dataclass
class SinkStats:
    """Running totals, logged periodically and returned by `run`."""

    consumed: int = 0
    written: int = 0  # documents inserted or replaced
    unchanged: int = 0  # already stored identically (replays)
    dead_letters: int = 0
    batches: int = 0
    retries: int = 0
    commit_failures: int = 0
    written_by_collection: dict[str, int] = field(default_factory=dict)  # for the metrics


@dataclass
class Batch:
    """One consumed batch turned into per-collection documents and the offsets to commit."""

    docs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # coll -> _id -> doc
    sources: dict[tuple[str, str], tuple[RecordRef, bytes | None, bytes | None]] = field(
        default_factory=dict
    )  # (coll, _id) -> where the document came from, for dead-lettering a refusal
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset to read
    consumed: int = 0

    def add(self, coll: str, doc: dict[str, Any], src: tuple[RecordRef, Any, Any]) -> None:
        # the same _id twice in one batch: the later record wins, like two upserts would
        self.docs.setdefault(coll, {})[doc["_id"]] = doc
        self.sources[(coll, doc["_id"])] = src


def topic_kinds(settings: Settings) -> dict[str, Kind]:
    """Topic name -> what its records are."""
    topics = settings.kafka.topics
    return {topics.fraud_alerts: "alert", topics.window_stats: "window_stat"}


def consumer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings: committed reads only, manual commits, start from the beginning."""
    return client_config(
        settings.kafka.bootstrap_servers,
        {
            "group.id": settings.mongo.consumer_group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "client.id": "fraud-mongo-sink",
        },
    )


def build_batch(
    messages: list[Message], kinds: Mapping[str, Kind], collections: Mapping[Kind, str], dlq: str
) -> Batch:
    """Decode consumed messages into a Batch (pure apart from reading the messages)."""
    batch = Batch()
    for msg in messages:
        if msg.error() is not None:
            continue
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        kind = kinds.get(topic)
        if kind is None:
            continue
        batch.consumed += 1
        batch.offsets[(topic, partition)] = max(
            batch.offsets.get((topic, partition), 0), offset + 1
        )
        ref = RecordRef(topic, partition, offset)
        key, value = msg.key(), msg.value()
        try:
            batch.add(collections[kind], decode(kind, value), (ref, key, value))
        except DecodeError as err:
            batch.add(dlq, dead_letter(ref, key, value, err), (ref, key, value))
    return batch


class MongoSink:
    """The write side: one MongoDB client, indexes, retrying batch writes."""

    def __init__(self, settings: Settings, stop_event: threading.Event) -> None:
        self.settings = settings
        self.stop_event = stop_event
        self.client = mongo.client_for(settings)
        self.db = mongo.database(self.client, settings)
        m = settings.mongo
        self.collections: dict[Kind, str] = {
            "alert": m.alerts_collection,
            "window_stat": m.window_stats_collection,
        }
        self.dlq = m.dead_letters_collection

    def close(self) -> None:
        self.client.close()

    def retrying(self, what: str, action: Callable[[], Any], stats: SinkStats) -> tuple[bool, Any]:
        """Run `action` until MongoDB acknowledges it; (False, None) if stopped meanwhile.

        Back-off doubles from 200 ms to `retry_backoff_max_ms`. After `stop_event` is set,
        retrying continues for `shutdown_grace_ms` only.
        """
        delay = 0.2
        max_delay = self.settings.mongo.retry_backoff_max_ms / 1000
        first_failure: float | None = None
        last_log = 0.0
        stop_deadline: float | None = None
        while True:
            try:
                result = action()
            except mongo.MongoUnavailable as exc:
                now = time.monotonic()
                stats.retries += 1
                if first_failure is None:
                    first_failure = last_log = now
                    log.warning("MongoDB unavailable during %s, retrying: %s", what, exc)
                elif now - last_log >= REMINDER_EVERY_S:
                    last_log = now
                    log.warning(
                        "MongoDB still unavailable after %.0f s (%d attempts); batch kept",
                        now - first_failure,
                        stats.retries,
                    )
                if self.stop_event.is_set():
                    if stop_deadline is None:
                        stop_deadline = now + self.settings.mongo.shutdown_grace_ms / 1000
                    if now >= stop_deadline:
                        return False, None
                if stop_deadline is None:
                    self.stop_event.wait(delay)  # returns early on stop
                else:
                    time.sleep(delay)
                delay = min(delay * 2, max_delay)
                continue
            if first_failure is not None:
                log.info(
                    "MongoDB back after %.1f s; %s done", time.monotonic() - first_failure, what
                )
            return True, result

    def ensure_indexes(self, stats: SinkStats) -> bool:
        """Create the query indexes; False if stopped before MongoDB answered."""
        ok, _ = self.retrying(
            "index creation", lambda: store.ensure_indexes(self.db, self.settings), stats
        )
        return ok

    def write_batch(self, batch: Batch, stats: SinkStats) -> bool:
        """Write every document of `batch`; False if stopped before MongoDB acknowledged it."""
        strategy = self.settings.mongo.write_strategy
        # dead letters last, so refusals of the main writes can join them
        order = [c for c in batch.docs if c != self.dlq] + [self.dlq]
        for coll_name in order:
            docs = list(batch.docs.get(coll_name, {}).values())
            if not docs:
                continue
            coll = self.db[coll_name]
            ok, res = self.retrying(
                f"write to {coll_name}", lambda c=coll, d=docs: store.write(c, d, strategy), stats
            )
            if not ok:
                return False
            stats.written += res.inserted + res.replaced
            by_coll = stats.written_by_collection
            by_coll[coll_name] = by_coll.get(coll_name, 0) + res.inserted + res.replaced
            stats.unchanged += res.unchanged
            if coll_name == self.dlq:
                stats.dead_letters += len(docs) - len(res.rejected)
                for idx, reason in res.rejected:
                    log.error("dead letter %s refused by MongoDB: %s", docs[idx]["_id"], reason)
                continue
            for idx, reason in res.rejected:
                ref, key, value = batch.sources[(coll_name, docs[idx]["_id"])]
                letter = dead_letter(ref, key, value, DecodeError(reason))
                batch.docs.setdefault(self.dlq, {})[letter["_id"]] = letter
        return True


def commit(consumer: Consumer, offsets: Mapping[tuple[str, int], int], stats: SinkStats) -> None:
    """Commit `offsets` synchronously; a failure only means the batch may be replayed."""
    if not offsets:
        return
    tps = [TopicPartition(t, p, off) for (t, p), off in offsets.items()]
    try:
        consumer.commit(offsets=tps, asynchronous=False)
    except KafkaException as exc:
        stats.commit_failures += 1
        log.warning("offset commit failed (the batch will be replayed, harmlessly): %s", exc)


def run(
    settings: Settings,
    stop_event: threading.Event,
    *,
    on_batch: Callable[[SinkStats], None] | None = None,
) -> SinkStats:
    """Consume until `stop_event` is set; returns the totals. The sink's one entry point."""
    stats = SinkStats()
    sink = MongoSink(settings, stop_event)
    kinds = topic_kinds(settings)
    if not sink.ensure_indexes(stats):
        sink.close()
        return stats
    endpoint = metrics.serve(settings, stats, list(kinds), log)
    consumer = Consumer(consumer_config(settings))
    consumer.subscribe(list(kinds))
    log.info(
        "sink consuming %s (group %s) into %s",
        ", ".join(kinds),
        settings.mongo.consumer_group,
        settings.mongo.database,
    )
    timeout_s = settings.mongo.batch_timeout_ms / 1000
    last_progress = time.monotonic()
    error_logged: set[str] = set()
    try:
        while not stop_event.is_set():
            messages = consumer.consume(num_messages=settings.mongo.batch_size, timeout=timeout_s)
            for msg in messages:
                err = msg.error()
                if (
                    err is not None
                    and err.code() != KafkaError._PARTITION_EOF
                    and err.name() not in error_logged  # once per kind, not per poll
                ):
                    error_logged.add(err.name())
                    log.warning("consumer error: %s", err)
            batch = build_batch(messages, kinds, sink.collections, sink.dlq)
            if batch.consumed == 0:
                continue
            if not sink.write_batch(batch, stats):
                log.warning("stopped with MongoDB unreachable: open batch left uncommitted")
                break
            commit(consumer, batch.offsets, stats)
            stats.consumed += batch.consumed
            stats.batches += 1
            if on_batch is not None:
                on_batch(stats)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                log.info(
                    "consumed %d, written %d, unchanged %d, dead letters %d",
                    stats.consumed,
                    stats.written,
                    stats.unchanged,
                    stats.dead_letters,
                )
    finally:
        consumer.close()
        sink.close()
        if endpoint is not None:
            endpoint.close()
    log.info(
        "sink stopped: consumed %d, written %d, unchanged %d, dead letters %d, retries %d",
        stats.consumed,
        stats.written,
        stats.unchanged,
        stats.dead_letters,
        stats.retries,
    )
    return stats
