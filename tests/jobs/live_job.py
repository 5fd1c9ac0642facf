"""Helpers for tests that run the real job: per-test topics, producing, submitting, reading back.

Every run gets its own topic names, consumer groups and transactional id prefix (config
overrides), so runs never collide with each other or with a developer's job.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from config import Settings, load_settings
from config.settings import deep_merge, environment_overrides
from config.stack import PROJECT_ROOT
from fraudctl.topics import TopicError, delete_topics, ensure_topics
from jobs.cluster.flink_client import ENDING_STATES, FlinkClient
from jobs.cluster.submit import submit

# each run's own lake (removed when the run closes)
TEST_LAKES = PROJECT_ROOT / ".run" / "test-lakes"


def run_overrides(uid: str, **job: Any) -> dict[str, Any]:
    """Config overrides giving one job run private topics, groups, transactional ids and
    lake. RISK_SCORE scores with model version 0 (the weighted sum) unless `job` says otherwise:
    the crafted inputs (tests/jobs/crafted.py) are written for it."""
    job = deep_merge({"rules": {"risk_score": {"model_version": 0}}}, job)
    return {
        "kafka": {
            "topics": {
                "transactions": f"t{uid}.transactions",
                "fraud_alerts": f"t{uid}.fraud_alerts",
                "window_stats": f"t{uid}.window_stats",
                "dlq": f"t{uid}.transactions_dlq",
                "truth": f"t{uid}.truth",
                "rules": f"t{uid}.fraud_rules",
            }
        },
        "flink": {"job_name": f"fraud-test-{uid}", "checkpoint_interval": "2 s"},
        "job": {"consumer_group": f"fraud-test-{uid}", "transactional_id_prefix": f"t{uid}", **job},
        "lake": {"path": str(TEST_LAKES / uid)},
    }


def remove_lake(settings: Settings) -> None:
    """Delete a test run's lake (tests/jobs/live_job.py TEST_LAKES only)."""
    path = Path(settings.lake.path)
    if path.is_relative_to(TEST_LAKES):
        shutil.rmtree(path, ignore_errors=True)


def has_alert(rule: str, entity_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    """A `LiveJob.read` condition: the messages hold an alert of `rule` about `entity_id`."""
    return lambda msgs: any(
        m["value"]["rule"] == rule and m["value"]["entity_id"] == entity_id for m in msgs
    )


@dataclass
class Record:
    """One input message: a dict (sent as JSON) or raw bytes, with its Kafka timestamp (and
    the partition it goes to; by default the producer's choice by key)."""

    value: dict[str, Any] | bytes
    timestamp_ms: int
    key: str | None = None
    partition: int | None = None

    def payload(self) -> bytes:
        if isinstance(self.value, bytes):
            return self.value
        return json.dumps(self.value).encode()


@dataclass
class LiveJob:
    """A job run against its own topics; `close()` cancels it."""

    settings: Settings
    overrides: dict[str, Any]
    client: FlinkClient
    job_id: str | None = None
    consumed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        base: Settings,
        uid: str,
        parallelism: int = 1,
        partitions: int = 1,
        flink: dict[str, Any] | None = None,
        stack: dict[str, Any] | None = None,
        **job: Any,
    ) -> LiveJob:
        """A run at `parallelism` reading `partitions` input partitions (outputs: one each);
        `flink` overrides more of the config's `flink` section (e.g. the state backend);
        `stack`: the overrides of a private stack (tests/isolated_stack.py) to run on."""
        overrides = deep_merge(stack or {}, run_overrides(uid, **job))
        overrides["flink"].update(parallelism=parallelism, **(flink or {}))
        s = load_settings(**overrides)
        t = s.kafka.topics
        ensure_topics(
            s.kafka.bootstrap_servers,
            {t.transactions: partitions, t.fraud_alerts: 1, t.window_stats: 1, t.dlq: 1},
        )
        return cls(settings=s, overrides=overrides, client=FlinkClient(base.flink.jobmanager))

    def produce(self, records: Iterable[Record], **config: Any) -> int:
        """Send `records` to the input topic, each partition's in the order given (idempotent:
        a retried batch cannot land after a later one); `config` overrides producer settings."""
        producer = Producer(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "linger.ms": 5,
                "enable.idempotence": True,
                **config,
            }
        )
        n = 0
        for r in records:
            while True:
                try:
                    producer.produce(
                        self.settings.kafka.topics.transactions,
                        value=r.payload(),
                        key=r.key.encode() if r.key else None,
                        timestamp=r.timestamp_ms,
                        **({} if r.partition is None else {"partition": r.partition}),
                    )
                    break
                except BufferError:  # the client's queue is full: let it deliver some
                    producer.poll(0.5)
            n += 1
        remaining = producer.flush(30)
        assert remaining == 0, f"{remaining} records not delivered"
        return n

    def start(self, from_savepoint: str | None = None) -> str:
        submitted = submit(self.settings, overrides=self.overrides, from_savepoint=from_savepoint)
        self.job_id = submitted.job_id
        self.client.wait_until_running(self.job_id, timeout_s=180)
        return self.job_id

    def read(
        self,
        topic: str,
        until: Callable[[list[dict[str, Any]]], bool],
        timeout_s: float = 180,
        settle_s: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Read `topic` (read_committed) from the start until `until(messages)` holds, then keep
        reading `settle_s` more seconds (to catch anything extra); bounded by `timeout_s`."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "group.id": f"reader-{topic}-{time.monotonic_ns()}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topic, 0, 0)])
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        try:
            while time.monotonic() < deadline:
                # the condition once per batch read, not per message: over a topic of many
                # thousand messages a condition over all of them would cost quadratic time
                if settle_until is None and until(messages):
                    settle_until = time.monotonic() + settle_s
                if settle_until is not None and time.monotonic() >= settle_until:
                    break
                if self.job_id and len(messages) == 0:
                    state = self.client.job_state(self.job_id)
                    if state in {"FAILED", "CANCELED"}:
                        raise AssertionError(f"job {state}: {self.client.root_cause(self.job_id)}")
                for msg in consumer.consume(1000, timeout=0.5):
                    if msg.error():
                        raise KafkaException(msg.error())
                    messages.append(
                        {
                            "key": msg.key().decode() if msg.key() else None,
                            "value": json.loads(msg.value()),
                            "raw": msg.value().decode(),
                        }
                    )
        finally:
            consumer.close()
        self.consumed[topic] = messages
        return messages

    def raw_topic_bytes(self, topic: str, timeout_s: float = 20) -> list[bytes]:
        """Every committed message (key + value bytes) currently in `topic`."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "group.id": f"scan-{topic}-{time.monotonic_ns()}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                pos = consumer.position([TopicPartition(topic, 0)])[0].offset
                if pos >= high:
                    break
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                out.append((msg.key() or b"") + b"|" + (msg.value() or b""))
        finally:
            consumer.close()
        return out

    def delete_topics(self) -> None:
        """Remove this run's topics (best effort; the broker deletes asynchronously)."""
        t = self.settings.kafka.topics
        with contextlib.suppress(TopicError):  # best effort: the next run has topics of its own
            delete_topics(
                self.settings.kafka.bootstrap_servers,
                [t.transactions, t.fraud_alerts, t.window_stats, t.dlq, t.rules],
            )

    def fraudctl(self, *args: str, timeout: float = 400) -> str:
        """`fraudctl ARGS` pointed at this run's topics through FRAUD_<SECTION>__<KEY>
        environment overrides; its stdout (the test fails on a non-zero exit)."""
        proc = self.fraudctl_run(*args, timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    def fraudctl_run(self, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        """`fraudctl ARGS` as `fraudctl` runs it, whatever its exit status."""
        env = {**os.environ, **environment_overrides(self.overrides)}
        return subprocess.run(
            [sys.executable, "-m", "fraudctl.app", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def close(self) -> None:
        if self.job_id:
            try:
                # a RESTARTING job holds its slots too: cancel whatever has not ended
                if self.client.job_state(self.job_id) not in ENDING_STATES:
                    self.client.cancel(self.job_id)
            except Exception:  # the job may already be gone; never mask the test's outcome
                pass
        remove_lake(self.settings)
