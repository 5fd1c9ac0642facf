"""Where events go: a JSONL file, or Kafka through confluent-kafka (default) or kafka-python.

Every Kafka sink is tuned for throughput and safety (acks=all, idempotence, retries, batching,
compression), checks the broker before the first record (bounded by `connect_timeout_s`, so an
unreachable broker is a clear `SinkError`, never a hang) and creates a missing topic.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import IO, Any, Protocol

from config.kafka import client_config
from fraudctl.topics import TopicError, ensure_topics

log = logging.getLogger(__name__)
CLIENTS = ("confluent", "kafka-python")


class SinkError(RuntimeError):
    """The sink cannot start or lost its destination; the message says what to do."""


class Sink(Protocol):
    delivered: int
    failed: int
    last_error: str | None

    def send(self, key: bytes | None, value: bytes) -> None: ...
    def send_truth(self, key: bytes, value: bytes) -> None: ...
    def poll(self) -> None: ...
    def flush(self, timeout_s: float) -> int: ...
    def close(self) -> None: ...


class FileSink:
    """Writes each value as one line (JSONL); keys are dropped."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] = path.open("wb")
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    def send(self, key: bytes | None, value: bytes) -> None:
        self._fh.write(value + b"\n")
        self.delivered += 1

    def send_truth(self, key: bytes, value: bytes) -> None:
        raise SinkError("a file sink has no truth topic; use --truth PATH")

    def poll(self) -> None:
        return None

    def flush(self, timeout_s: float) -> int:
        self._fh.flush()
        return 0

    def close(self) -> None:
        self._fh.close()


class TruthFile:
    """The ground truth as JSONL, one record per line, written as scenarios complete."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("w", encoding="utf-8")
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.written += 1

    def close(self) -> None:
        self._fh.close()


def _quiet_logger() -> logging.Logger:
    """librdkafka's own log lines go here instead of stderr (errors are reported by us)."""
    quiet = logging.getLogger("producer.librdkafka")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def _unreachable(bootstrap: str, timeout_s: float, detail: str) -> SinkError:
    return SinkError(
        f"Kafka broker {bootstrap} is unreachable (no answer within {timeout_s:g} s: {detail}). "
        "Start the local stack with `fraudctl stack up` or point --bootstrap-servers / "
        "FRAUD_KAFKA__BOOTSTRAP_SERVERS at a running broker."
    )


def _ensure_topics(
    bootstrap: str, topics: list[str], partitions: dict[str, int], timeout_s: float
) -> None:
    """Create those of `topics` that are missing (partitions by name, default 1); confluent-kafka's
    admin client serves either producer client (it is always installed)."""
    try:
        created = ensure_topics(
            bootstrap, {t: partitions.get(t, 1) for t in topics}, timeout_s, logger=_quiet_logger()
        )
    except TopicError as exc:
        raise SinkError(f"cannot create topics {topics}: {exc}") from exc
    for name in created:
        log.info("created topic %s", name)


class ConfluentSink:
    """confluent-kafka (librdkafka) producer; counts deliveries in callbacks."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        truth_topic: str | None = None,
        partitions: dict[str, int] | None = None,
        linger_ms: int = 20,
        batch_size: int = 1_000_000,
        compression: str = "lz4",
        delivery_timeout_ms: int = 30_000,
        connect_timeout_s: float = 8.0,
    ) -> None:
        from confluent_kafka import KafkaException, Producer

        self.topic = topic
        self.truth_topic = truth_topic
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        quiet = _quiet_logger()
        self._producer = Producer(
            client_config(
                bootstrap,
                {
                    "client.id": "fraudctl-producer",
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": linger_ms,
                    "batch.size": batch_size,
                    "batch.num.messages": 10_000,
                    "compression.type": compression,
                    "queue.buffering.max.messages": 500_000,
                    "queue.buffering.max.kbytes": 512 * 1024,
                    "message.timeout.ms": delivery_timeout_ms,
                    "socket.connection.setup.timeout.ms": int(connect_timeout_s * 1000),
                    # same key -> partition mapping as the Java client and kafka-python
                    "partitioner": "murmur2_random",
                    "logger": quiet,
                    "error_cb": self._on_error,
                    # reports only for failures: no Python call per delivered message
                    "delivery.report.only.error": True,
                    "on_delivery": self._on_delivery,
                },
            )
        )
        self._send = self._producer.produce
        try:
            md = self._producer.list_topics(timeout=connect_timeout_s)
        except KafkaException as exc:
            raise _unreachable(bootstrap, connect_timeout_s, str(exc.args[0])) from exc
        if not md.brokers:
            raise _unreachable(bootstrap, connect_timeout_s, "no brokers in metadata")
        missing = [t for t in (topic, truth_topic) if t and t not in md.topics]
        if missing:
            _ensure_topics(bootstrap, missing, partitions or {}, connect_timeout_s)

    def _on_error(self, err: Any) -> None:
        self.last_error = str(err)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            if msg is None or msg.topic() == self.topic:
                self.failed += 1
            self.last_error = str(err)

    def _produce_blocking(self, topic: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._send(topic, value, key)
                return
            except BufferError:
                # local queue full: let librdkafka deliver, then retry
                self._producer.poll(0.05)

    def send(self, key: bytes | None, value: bytes) -> None:
        try:
            self._send(self.topic, value, key)
        except BufferError:
            self._produce_blocking(self.topic, key, value)
        self.sent += 1

    def send_truth(self, key: bytes, value: bytes) -> None:
        assert self.truth_topic
        self._produce_blocking(self.truth_topic, key, value)

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding deliveries; returns how many are still unacknowledged."""
        remaining = self._producer.flush(timeout_s)
        self.delivered = max(0, self.sent - self.failed - remaining)
        return remaining

    def close(self) -> None:
        # confluent-kafka closes on garbage collection; flush() already ran
        return None


class KafkaPythonSink:
    """kafka-python producer; failures counted in errbacks, deliveries after a clean flush."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        truth_topic: str | None = None,
        partitions: dict[str, int] | None = None,
        linger_ms: int = 20,
        batch_size: int = 256 * 1024,
        compression: str | None = None,
        delivery_timeout_ms: int = 30_000,
        connect_timeout_s: float = 8.0,
    ) -> None:
        from kafka import KafkaProducer
        from kafka.codec import has_gzip, has_lz4, has_zstd
        from kafka.errors import KafkaError

        if compression is None or (compression == "lz4" and not has_lz4()):
            compression = (
                "lz4" if has_lz4() else "zstd" if has_zstd() else "gzip" if has_gzip() else None
            )
        self.topic = topic
        self.truth_topic = truth_topic
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        timeout_ms = int(connect_timeout_s * 1000)
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id="fraudctl-producer",
                acks="all",
                enable_idempotence=True,
                linger_ms=linger_ms,
                batch_size=batch_size,
                compression_type=compression,
                max_in_flight_requests_per_connection=5,
                delivery_timeout_ms=delivery_timeout_ms,
                request_timeout_ms=min(10_000, delivery_timeout_ms - linger_ms - 1),
                max_block_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
                allow_auto_create_topics=False,
            )
        except KafkaError as exc:
            raise _unreachable(bootstrap, connect_timeout_s, type(exc).__name__) from exc
        _ensure_topics(
            bootstrap, [t for t in (topic, truth_topic) if t], partitions or {}, connect_timeout_s
        )
        try:
            for t in (topic, truth_topic):
                if t:
                    self._producer.partitions_for(t)
        except KafkaError as exc:
            self._producer.close(timeout=1)
            raise SinkError(
                f"topic {t} is not available on {bootstrap} within {connect_timeout_s:g} s "
                f"({type(exc).__name__}); `fraudctl stack up` creates the contract's topics"
            ) from exc

    def _on_error(self, exc: BaseException) -> None:
        self.failed += 1
        self.last_error = repr(exc)

    def _on_ok(self, _metadata: Any) -> None:
        self.delivered += 1

    def send(self, key: bytes | None, value: bytes) -> None:
        fut = self._producer.send(self.topic, value=value, key=key)
        fut.add_callback(self._on_ok)
        fut.add_errback(self._on_error)
        self.sent += 1

    def send_truth(self, key: bytes, value: bytes) -> None:
        assert self.truth_topic
        self._producer.send(self.truth_topic, value=value, key=key)

    def poll(self) -> None:
        return None

    def flush(self, timeout_s: float) -> int:
        from kafka.errors import KafkaTimeoutError

        with contextlib.suppress(KafkaTimeoutError):
            self._producer.flush(timeout=timeout_s)
        return self.sent - self.delivered - self.failed

    def close(self) -> None:
        self._producer.close(timeout=5)


def open_kafka_sink(client: str, bootstrap: str, topic: str, **kwargs: Any) -> Sink:
    """A Kafka sink of the named client ("confluent" or "kafka-python")."""
    if client == "confluent":
        return ConfluentSink(bootstrap, topic, **kwargs)
    if client == "kafka-python":
        return KafkaPythonSink(bootstrap, topic, **kwargs)
    raise SinkError(f"unknown Kafka client {client!r}; choose one of {', '.join(CLIENTS)}")
