"""The whole pipeline on a private stack: job + sink on per-run topics and database.

Used by the fault-injection suite: each run gets its own topics, consumer groups,
transactional ids and MongoDB database, so runs on one stack never see each other's data.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from config import Settings, load_settings
from config.settings import deep_merge
from fraudctl.topics import ensure_topics
from jobs.cluster.flink_client import FlinkClient, FlinkError
from jobs.cluster.submit import submit
from jobs.history import lake
from producer.generator import GeneratorOptions, TransactionGenerator
from producer.population import build_population
from stack.layout import Layout
from tests.jobs.live_job import remove_lake, run_overrides
from tests.polling import wait_until

FRAUDCTL = str(Path(sys.executable).with_name("fraudctl"))


def dataset(settings: Settings, n: int, seed: int = 21) -> list[tuple[bytes | None, bytes]]:
    """`n` generated transactions (every scenario mixed in) and a far-future flush record
    that moves the watermark past every window, pattern and cooldown."""
    opts = GeneratorOptions(seed=seed, start_ms=1_795_000_000_000, events_per_second=50.0,
                            fraud_rate=0.05)  # fmt: skip
    gen = TransactionGenerator(build_population(seed, 2_000), opts, settings.card_token_secret())
    events = []
    for ev in gen:
        events.append((ev.key, ev.value))
        if len(events) >= n:
            break
    events += [(e.key, e.value) for e in gen.drain()]
    last = json.loads(events[-1][1])
    flush = {
        **last,
        "transaction_id": "flush-" + last["transaction_id"],
        "amount": 12.34,
        "event_time": "2026-12-31T00:00:00.000Z",
    }
    events.append((events[-1][0], json.dumps(flush).encode()))
    return events


def transaction_ids(events: list[tuple[bytes | None, bytes]]) -> set[str]:
    return {json.loads(value)["transaction_id"] for _, value in events}


def card_numbers(events: list[tuple[bytes | None, bytes]]) -> set[str]:
    return {json.loads(value)["card_number"] for _, value in events}


@dataclass
class Pipeline:
    stack: Settings
    config_file: Path
    overrides: dict[str, Any]
    settings: Settings
    client: FlinkClient
    job_id: str | None = None
    sink_proc: subprocess.Popen | None = None
    sink_log: list[Path] = field(default_factory=list)

    @classmethod
    def create(
        cls, stack: Settings, config_file: Path, stack_overrides: dict, uid: str, **job: Any
    ) -> Pipeline:
        overrides = deep_merge(stack_overrides, run_overrides(uid, **job))
        overrides = deep_merge(
            overrides,
            {"mongo": {"database": f"fault_{uid}", "consumer_group": f"sink-{uid}"}},
        )
        s = load_settings(**overrides)
        t = s.kafka.topics
        ensure_topics(
            s.kafka.bootstrap_servers,
            dict.fromkeys([t.transactions, t.fraud_alerts, t.window_stats, t.dlq], 1),
        )
        return cls(stack, config_file, overrides, s, FlinkClient(s.flink.jobmanager))

    # --- the job -------------------------------------------------------------------------
    def submit(self, from_savepoint: str | None = None) -> str:
        self.job_id = submit(
            self.settings, from_savepoint=from_savepoint, overrides=self.overrides
        ).job_id
        self.client.wait_until_running(self.job_id, timeout_s=240)
        return self.job_id

    def completed_checkpoints(self) -> int:
        try:
            return self.client.checkpoint_stats(self.job_id)["completed"]
        except FlinkError:  # JobManager restarting: no checkpoints to report right now
            return 0

    def wait_for_new_checkpoint(self, timeout_s: float = 60) -> None:
        before = self.completed_checkpoints()
        wait_until(lambda: self.completed_checkpoints() > before, timeout_s, "a new checkpoint")

    def latest_retained_checkpoint(self) -> str:
        """Path of the newest complete checkpoint of the job (for resuming after a crash)."""
        root = Layout.from_settings(self.stack).checkpoints / str(self.job_id)
        done = [p for p in root.glob("chk-*") if (p / "_metadata").exists()]
        assert done, f"no completed checkpoint under {root}"
        return str(max(done, key=lambda p: int(p.name.split("-")[1])))

    def cancel(self) -> None:
        if self.job_id:
            with contextlib.suppress(Exception):  # already gone with a killed cluster
                self.client.cancel(self.job_id)
        remove_lake(self.settings)

    # --- the sink ------------------------------------------------------------------------
    def _sink_env(self) -> dict[str, str]:
        t, m = self.settings.kafka.topics, self.settings.mongo
        return {
            **os.environ,
            "FRAUD_CONFIG": str(self.config_file),
            "FRAUD_KAFKA__TOPICS__FRAUD_ALERTS": t.fraud_alerts,
            "FRAUD_KAFKA__TOPICS__WINDOW_STATS": t.window_stats,
            "FRAUD_MONGO__DATABASE": m.database,
            "FRAUD_MONGO__CONSUMER_GROUP": m.consumer_group,
        }

    def start_sink(self) -> None:
        log = (
            self.config_file.parent
            / f"sink-{len(self.sink_log)}-{self.settings.mongo.database}.log"
        )
        self.sink_log.append(log)
        with open(log, "wb") as fh:
            self.sink_proc = subprocess.Popen(
                [FRAUDCTL, "sink"], env=self._sink_env(), stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def sink_log_tail(self, lines: int = 30) -> str:
        """The end of the newest sink process's log (for failure messages)."""
        if not self.sink_log or not self.sink_log[-1].exists():
            return "(no sink log)"
        text = self.sink_log[-1].read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def kill_sink(self, sig: int = signal.SIGKILL) -> None:
        assert self.sink_proc is not None
        self.sink_proc.send_signal(sig)
        self.sink_proc.wait(timeout=60)

    def stop_sink(self) -> None:
        if self.sink_proc and self.sink_proc.poll() is None:
            self.kill_sink(signal.SIGTERM)

    # --- data in and out -----------------------------------------------------------------
    def produce(
        self,
        events: list[tuple[bytes | None, bytes]],
        rate: float,
        faults: dict[float, Callable[[], None]] | None = None,
    ) -> None:
        """Send `events` at `rate`/s (idempotent producer: broker restarts add no duplicates);
        call each fault once the given fraction of events has been sent."""
        producer = Producer({
            "bootstrap.servers": self.settings.kafka.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 300_000,
        })  # fmt: skip
        pending = sorted((faults or {}).items())
        t0 = time.monotonic()
        for i, (key, value) in enumerate(events):
            while pending and i >= pending[0][0] * len(events):
                producer.flush(60)
                pending.pop(0)[1]()
                t0 = time.monotonic() - i / rate
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.produce(self.settings.kafka.topics.transactions, value=value, key=key)
            producer.poll(0)
        assert producer.flush(120) == 0, "input records not delivered"

    def alert_ids(self) -> list[str]:
        """Every alert id in `fraud_alerts` (read_committed), in topic order, duplicates kept."""
        c = Consumer({
            "bootstrap.servers": self.settings.kafka.bootstrap_servers,
            "group.id": f"reader-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        })  # fmt: skip
        c.assign([TopicPartition(self.settings.kafka.topics.fraud_alerts, 0, 0)])
        ids: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                msg = c.poll(1.0)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        break
                    continue
                ids.append(json.loads(msg.value())["alert_id"])
        finally:
            c.close()
        return ids

    def mongo_ids(self) -> list[str]:
        client = pymongo.MongoClient(self.settings.mongo.uri, serverSelectionTimeoutMS=5000)
        try:
            coll = client[self.settings.mongo.database][self.settings.mongo.alerts_collection]
            return [d["_id"] for d in coll.find({}, {"_id": 1})]
        except pymongo.errors.PyMongoError:
            return []
        finally:
            client.close()

    def wait_for_stable_alerts(self, quiet_s: float = 25, timeout_s: float = 420) -> list[str]:
        """Alert ids once none has arrived for `quiet_s` (the uninterrupted baseline)."""
        last: list[str] = []
        changed = time.monotonic()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ids = self.alert_ids()
            if len(ids) != len(last):
                last, changed = ids, time.monotonic()
            elif ids and time.monotonic() - changed >= quiet_s:
                return ids
            time.sleep(2)
        raise AssertionError(f"alerts still arriving after {timeout_s} s ({len(last)} so far)")

    def wait_for(self, expected: set[str], timeout_s: float = 420) -> tuple[list[str], list[str]]:
        """Wait until topic and MongoDB hold every expected alert, then a while longer so
        duplicates or extras would show; return (topic ids, mongo ids)."""
        wait_until(lambda: expected <= set(self.alert_ids()), timeout_s, "every alert in Kafka")
        try:
            # the sink may need a consumer-group rejoin after a broker restart: same bound as Kafka
            wait_until(lambda: expected <= set(self.mongo_ids()), timeout_s, "every alert in Mongo")
        except pytest.fail.Exception as exc:
            missing = len(expected - set(self.mongo_ids()))
            pytest.fail(f"{exc}; {missing} missing; sink log tail:\n{self.sink_log_tail()}")
        self.wait_for_new_checkpoint(timeout_s=120)  # lets duplicates or extras, if any, commit
        return self.alert_ids(), self.mongo_ids()

    def lake_ids(self) -> list[str]:
        """The transaction id of every row the lake has committed, duplicates kept."""
        data = lake.dataset(self.settings, "transactions")
        if data is None:
            return []
        return data.to_table(columns=["transaction_id"])["transaction_id"].to_pylist()

    def wait_for_lake(self, expected: set[str], timeout_s: float = 180) -> list[str]:
        """Wait until the lake holds every expected transaction, and one more checkpoint (so
        duplicates or extras, if any, are committed too); return its ids."""
        wait_until(lambda: expected <= set(self.lake_ids()), timeout_s, "every row in the lake")
        self.wait_for_new_checkpoint(timeout_s=120)
        return self.lake_ids()

    def failovers(self) -> int:
        """Failures the job recovered from (its exception history)."""
        return self.client.failovers(self.job_id)
