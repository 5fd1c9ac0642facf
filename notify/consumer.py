"""The Kafka loop behind `fraudctl notify`.

- reads `fraud_alerts` (read_committed, its own consumer group `notify.consumer_group`), one
  `consume()` batch at a time;
- keeps the alerts at or above `notify.min_severity` (the first of each `alert_id` in a batch),
  renders each once, and delivers it to every destination, the destinations in parallel (one
  thread each, so a destination in back-off does not hold the others back);
- commits the batch's offsets only when every notification of the batch is settled (sent,
  dead-lettered, or skipped as already settled); on stop mid-batch nothing is committed and
  the next run goes on from there, its claims telling what was done;
- at start and every `SWEEP_EVERY_S`, finishes claims left `claimed` by a notifier that died
  whose Kafka record will not come again (notify.claims.ClaimBook.stale).

Settling a batch can take minutes (back-off up to `notify.retry_total_ms`, the rate limit).
Meanwhile the consumer's partitions are paused and it keeps polling, so the group does not
evict it for exceeding `max.poll.interval.ms`; a record a poll still returns (a partition
assigned meanwhile) is kept for the next batch, never skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from config import Settings
from config.kafka import client_config
from fraudctl import mongo
from fraudctl.mongo import MongoUnavailable
from notify import alerts as alert_rules
from notify import messages
from notify.claims import ClaimBook
from notify.delivery import PAUSE_POINTS, Deliverer
from notify.destinations import Destination
from notify.metrics import Metrics

log = logging.getLogger("notify")

PAUSE_ENV = "FRAUD_NOTIFY_TEST_PAUSE"
SWEEP_EVERY_S = 60.0
PROGRESS_EVERY_S = 30.0
# a batch settling longer than this pauses the partitions and polls while it waits
POLL_WHILE_SETTLING_S = 2.0
# a notifier killed -9 holds its partitions this long; a restart waits that out
SESSION_TIMEOUT_MS = 10_000
COUNTERS = ("sent", "retried", "dead_lettered", "duplicate_skipped")


@dataclass
class NotifyStats:
    """Running totals (thread-safe updates through `add`), returned by `run`."""

    seen: int = 0
    below_min_severity: int = 0
    invalid: int = 0
    sent: int = 0
    retried: int = 0
    dead_lettered: int = 0
    duplicate_skipped: int = 0
    batches: int = 0
    commit_failures: int = 0
    by_destination: dict[str, dict[str, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1, destination: str | None = None) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
            if destination is not None:
                per = self.by_destination.setdefault(destination, dict.fromkeys(COUNTERS, 0))
                per[name] += n


def consumer_config(settings: Settings) -> dict[str, Any]:
    n = settings.notify
    return client_config(
        settings.kafka.bootstrap_servers,
        {
            "group.id": n.consumer_group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": n.auto_offset_reset,
            "enable.partition.eof": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "client.id": "fraud-notify",
        },
    )


@dataclass
class Batch:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def select(messages_: Sequence[Message], min_severity: str, seen: Callable[[str], None]) -> Batch:
    """The batch's alerts to notify (first of each alert_id) and the offsets to commit."""
    batch = Batch()
    ids: set[str] = set()
    for msg in messages_:
        if msg.error() is not None:
            continue
        key = (msg.topic(), msg.partition())
        batch.offsets[key] = max(batch.offsets.get(key, 0), msg.offset() + 1)
        try:
            alert = alert_rules.decode(msg.value())
        except alert_rules.NotAnAlert as exc:
            seen("invalid")
            log.warning(
                "record %s[%d]@%d is not an alert (%s): skipped",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                exc.reason,
            )
            continue
        if not alert_rules.at_or_above(alert, min_severity):
            seen("below_min_severity")
            continue
        seen("notify")
        if alert["alert_id"] not in ids:
            ids.add(alert["alert_id"])
            batch.alerts.append(alert)
    return batch


def owner_id() -> str:
    """This process, as it appears in the claims it holds."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Notifier:
    """Claims, destinations and metrics of one run; `settle` delivers a list of alerts."""

    def __init__(
        self,
        settings: Settings,
        destinations: Sequence[Destination],
        stop: threading.Event,
        stats: NotifyStats,
        metrics: Metrics,
        environ: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.stats = stats
        self.metrics = metrics
        n = settings.notify
        self.client = mongo.client_for(settings)
        db = mongo.database(self.client, settings)
        self.book = ClaimBook(
            db[n.claims_collection],
            db[n.dead_letters_collection],
            owner_id(),
            n.claim_lease_ms / 1000,
            _utcnow,
        )
        pause_at = environ.get(PAUSE_ENV) or None
        if pause_at is not None and pause_at not in PAUSE_POINTS:
            raise ValueError(f"{PAUSE_ENV} must be one of {', '.join(PAUSE_POINTS)}")
        self.deliverers = [
            Deliverer(
                d,
                self.book,
                n,
                count=self._count,
                now=_utcnow,
                wait=stop.wait,
                pause_at=pause_at,
                stop=stop,
            )
            for d in destinations
        ]
        self.pool = ThreadPoolExecutor(
            max_workers=max(len(destinations), 1), thread_name_prefix="notify"
        )

    def _count(self, destination: str, outcome: str) -> None:
        self.metrics.notifications.labels(destination, outcome).inc()
        self.stats.add(outcome, destination=destination)

    def prepare(self) -> bool:
        """Create the claim indexes, retrying while MongoDB is down; False if stopped."""
        delay = 0.2
        while not self.stop.is_set():
            try:
                self.book.ensure_indexes()
                return True
            except MongoUnavailable as exc:
                log.warning("MongoDB unavailable (%s); retrying", exc)
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)
        return False

    def settle(self, alerts: Sequence[dict[str, Any]]) -> bool:
        """Deliver every alert to every destination; True when all are settled (False: the
        notifier is stopping and some are not)."""
        if not alerts:
            return True
        notes = [messages.render(a, self.settings.notify) for a in alerts]

        def _one_destination(d: Deliverer) -> bool:
            for alert, note in zip(alerts, notes, strict=True):
                if d.deliver(alert, note) == "stopped":
                    return False
            return True

        results = list(self.pool.map(_one_destination, self.deliverers))
        return all(results)

    def sweep(self) -> bool:
        """Finish the claims a dead notifier left (whatever their Kafka record's fate)."""
        try:
            stale = self.book.stale(d.dest.name for d in self.deliverers)
        except MongoUnavailable as exc:
            log.warning("stale claims not checked (MongoDB unavailable: %s)", exc)
            return True
        by_dest: dict[str, list[dict[str, Any]]] = {}
        for claim in stale:
            if isinstance(claim.get("alert"), dict):
                by_dest.setdefault(claim["destination"], []).append(claim["alert"])
        if not by_dest:
            return True
        log.warning("finishing %d claims left unsettled by a stopped notifier", len(stale))
        ok = True
        for d in self.deliverers:
            for alert in by_dest.get(d.dest.name, []):
                note = messages.render(alert, self.settings.notify)
                ok = d.deliver(alert, note) != "stopped" and ok
        return ok

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for d in self.deliverers:
            close = getattr(d.dest, "close", None)
            if close is not None:
                close()
        self.client.close()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def commit(consumer: Consumer, offsets: dict[tuple[str, int], int], stats: NotifyStats) -> None:
    """Commit `offsets` synchronously; a failure only means the batch is consumed again (its
    notifications are then skipped as settled)."""
    if not offsets:
        return
    tps = [TopicPartition(t, p, off) for (t, p), off in offsets.items()]
    try:
        consumer.commit(offsets=tps, asynchronous=False)
    except KafkaException as exc:
        stats.add("commit_failures")
        log.warning("offset commit failed (the batch will be read again, harmlessly): %s", exc)


def settle_polling(
    consumer: Consumer,
    notifier: Notifier,
    alerts: Sequence[dict[str, Any]],
    helper: ThreadPoolExecutor,
) -> tuple[bool, list[Message]]:
    """`notifier.settle(alerts)` in `helper`; while it takes long, the assigned partitions are
    paused and the consumer polls, to stay in its group. Returns (settled, records polled
    meanwhile: the start of the next batch)."""
    future = helper.submit(notifier.settle, alerts)
    try:
        return future.result(timeout=POLL_WHILE_SETTLING_S), []
    except FutureTimeout:
        pass
    kept: list[Message] = []
    consumer.pause(consumer.assignment())
    try:
        while True:
            try:
                return future.result(timeout=1.0), kept
            except FutureTimeout:
                pass
            msg = consumer.poll(0)
            if msg is not None and msg.error() is None:
                # a partition assigned meanwhile is not paused: keep its record, pause it too
                kept.append(msg)
                consumer.pause([TopicPartition(msg.topic(), msg.partition())])
    finally:
        consumer.resume(consumer.assignment())


def run(
    settings: Settings,
    stop: threading.Event,
    destinations: Sequence[Destination],
    *,
    environ: Mapping[str, str] | None = None,
    on_batch: Callable[[NotifyStats], None] | None = None,
) -> NotifyStats:
    """Notify until `stop` is set; returns the totals. The notifier's one entry point."""
    environ = os.environ if environ is None else environ
    n = settings.notify
    topic = settings.kafka.topics.fraud_alerts
    stats = NotifyStats()
    metrics = Metrics([d.name for d in destinations])
    if n.metrics_port:
        metrics.serve(n.metrics_port, settings, "notify")
        metrics.follow_lag(metrics.consumer_lag, settings, n.consumer_group, [topic], log)
        log.info("metrics on :%d/metrics", n.metrics_port)
    notifier = Notifier(settings, destinations, stop, stats, metrics, environ)

    def seen(result: str) -> None:
        metrics.alerts_seen.labels(result).inc()
        stats.add("seen")
        if result != "notify":
            stats.add(result)

    consumer: Consumer | None = None
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify-batch")
    try:
        if not notifier.prepare():
            return stats
        log.info(
            "notify consuming %s (group %s), %s and above, to: %s",
            topic,
            n.consumer_group,
            n.min_severity,
            "; ".join(d.dest.describe() for d in notifier.deliverers),
        )
        notifier.sweep()
        last_sweep = last_progress = time.monotonic()
        consumer = Consumer(consumer_config(settings))
        consumer.subscribe([topic])
        errors_logged: set[str] = set()
        leftover: list[Message] = []
        while not stop.is_set():
            batch_msgs = leftover + consumer.consume(
                num_messages=max(n.batch_size - len(leftover), 1),
                timeout=n.batch_timeout_ms / 1000,
            )
            leftover = []
            for msg in batch_msgs:
                err = msg.error()
                if (
                    err is not None
                    and err.code() != KafkaError._PARTITION_EOF
                    and err.name() not in errors_logged  # once per kind, not per poll
                ):
                    errors_logged.add(err.name())
                    log.warning("consumer error: %s", err)
            batch = select(batch_msgs, n.min_severity, seen)
            if batch.offsets:
                settled, leftover = settle_polling(consumer, notifier, batch.alerts, helper)
                if not settled:
                    log.info("stopping with notifications unsettled: batch left uncommitted")
                    break
                commit(consumer, batch.offsets, stats)
                stats.add("batches")
                if on_batch is not None:
                    on_batch(stats)
            now = time.monotonic()
            if now - last_sweep >= SWEEP_EVERY_S:
                last_sweep = now
                notifier.sweep()
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                log.info(
                    "seen %d, sent %d, retried %d, dead-lettered %d, duplicates skipped %d",
                    stats.seen,
                    stats.sent,
                    stats.retried,
                    stats.dead_lettered,
                    stats.duplicate_skipped,
                )
    finally:
        helper.shutdown(wait=True)
        if consumer is not None:
            consumer.close()
        notifier.close()
        metrics.close()
    log.info(
        "notify stopped: seen %d, sent %d, retried %d, dead-lettered %d, duplicates skipped %d",
        stats.seen,
        stats.sent,
        stats.retried,
        stats.dead_lettered,
        stats.duplicate_skipped,
    )
    return stats
