"""Harness for the sink's live tests: unique topics, database and group per test, a producer,
the sink in a thread or as a `fraudctl sink` subprocess, and bounded polls."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from pymongo import MongoClient

from config import Settings, load_settings
from fraudctl.topics import TopicError, delete_topics, ensure_topics
from mongo_sink.consumer import SinkStats, run

FRAUDCTL = Path(sys.executable).with_name("fraudctl")


def iso(ms: int) -> str:
    """Epoch ms -> contract ISO string."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


BASE_MS = 1_795_300_000_000  # 2026-11-22T...


def make_alert(i: int, **over: Any) -> dict[str, Any]:
    """A contract-shaped alert, distinct per `i`."""
    t = BASE_MS + i * 1000
    doc = {
        "alert_id": f"{i:016x}",
        "rule": ("VELOCITY", "HIGH_VALUE", "GEO_HOP")[i % 3],
        "severity": ("HIGH", "MEDIUM", "HIGH")[i % 3],
        "entity_type": "card",
        "entity_id": f"tok{i % 50:04d}",
        "user_id": f"u_{i % 50}",
        "card_last4": f"{i % 50:04d}",
        "card_token": f"tok{i % 50:04d}",
        "transaction_ids": [f"t{i}a", f"t{i}b"],
        "amount": float(i % 700) + 0.5,
        "score": None,
        "window_start": iso(t - 300_000),
        "window_end": iso(t),
        "event_time": iso(t),
        "detected_at": iso(t + 1500),
        "details": {"count": 4, "threshold": 3},
    }
    doc.update(over)
    return doc


def make_stat(i: int) -> dict[str, Any]:
    """A global 10-s window stat, distinct per `i`."""
    start = BASE_MS // 10_000 * 10_000 + i * 10_000
    return {
        "stat_id": f"global|ALL|{iso(start)}",
        "granularity": "global",
        "group": "ALL",
        "window_start": iso(start),
        "window_end": iso(start + 10_000),
        "txn_count": i + 1,
        "total_amount": 10.0 * (i + 1),
        "min_amount": 1.0,
        "max_amount": 9.0,
        "avg_amount": 10.0,
        "distinct_cards": 1,
    }


class Env:
    """One test's isolated topics, database and consumer group on the live stack."""

    def __init__(self, base: Settings, suffix: str, mongo_uri: str | None = None) -> None:
        self.suffix = suffix
        self.alerts_topic = f"t5_alerts_{suffix}"
        self.stats_topic = f"t5_stats_{suffix}"
        overrides: dict[str, Any] = {
            "kafka": {
                "topics": {
                    **base.kafka.topics.model_dump(),
                    "fraud_alerts": self.alerts_topic,
                    "window_stats": self.stats_topic,
                }
            },
            "mongo": {
                "database": f"t5_{suffix}",
                "consumer_group": f"t5_{suffix}",
                "batch_timeout_ms": 200,
                "retry_backoff_max_ms": 1000,
                "server_timeout_ms": 1000,
                **({"uri": mongo_uri} if mongo_uri else {}),
            },
        }
        self.settings = load_settings(**overrides)
        self.overrides = overrides
        self.producer = Producer(
            {"bootstrap.servers": base.kafka.bootstrap_servers, "linger.ms": 5}
        )
        self._client: MongoClient | None = None

    @property
    def db(self) -> Any:
        if self._client is None:
            self._client = MongoClient(self.settings.mongo.uri, serverSelectionTimeoutMS=5000)
        return self._client[self.settings.mongo.database]

    def create_topics(self, alert_partitions: int = 2) -> None:
        ensure_topics(
            self.settings.kafka.bootstrap_servers,
            {self.alerts_topic: alert_partitions, self.stats_topic: 1},
        )

    def send(self, topic: str, key: bytes | str | None, value: bytes | dict) -> None:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        self.producer.produce(topic, key=key, value=raw)
        self.producer.poll(0)

    def send_alerts(self, alerts: list[dict]) -> None:
        for a in alerts:
            self.send(self.alerts_topic, a["entity_id"], a)
        self.flush()

    def send_stats(self, stats: list[dict]) -> None:
        for s in stats:
            self.send(self.stats_topic, s["stat_id"], s)
        self.flush()

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    def config_file(self, path: Path) -> Path:
        """The test's settings as a YAML file for a `fraudctl sink --config` subprocess."""
        data = self.settings.model_dump(mode="json", exclude={"card_token_secret_value"})
        path.write_text(yaml.safe_dump(data))
        return path

    def count(self, coll: str) -> int:
        return self.db[coll].count_documents({})

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            self.db.client.drop_database(self.settings.mongo.database)
        with contextlib.suppress(TopicError):
            delete_topics(
                self.settings.kafka.bootstrap_servers, [self.alerts_topic, self.stats_topic]
            )
        if self._client is not None:
            self._client.close()


@pytest.fixture
def sink_env(live_stack: Settings, unique_name: str) -> Iterator[Env]:
    env = Env(live_stack, unique_name)
    env.create_topics()
    yield env
    env.drop()


@contextlib.contextmanager
def sink_thread(settings: Settings) -> Iterator[tuple[threading.Event, SinkStats]]:
    """`run()` in a thread; stopped (and joined) when the block ends."""
    stop = threading.Event()
    holder: dict[str, Any] = {}
    latest = SinkStats()

    def _target() -> None:
        holder["stats"] = run(settings, stop, on_batch=lambda s: latest.__dict__.update(s.__dict__))

    thread = threading.Thread(target=_target, name="sink", daemon=True)
    thread.start()
    try:
        yield stop, latest
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "sink thread did not stop within 60 s"
        if "stats" in holder:
            latest.__dict__.update(holder["stats"].__dict__)


class SinkProcess:
    """`fraudctl sink --config FILE` as a subprocess, output to a log file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [str(FRAUDCTL), "sink", "--config", str(config)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def text(self) -> str:
        return self.log.read_text(errors="replace")
