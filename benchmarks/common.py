"""What the job benchmarks share: a fresh job on fresh topics, its input, and its profile.

Each benchmark run gets unique topic names, consumer group and transactional ids, so runs never
see each other's data; the input comes from the producer's own generator.
"""

from __future__ import annotations

import statistics
import threading
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from config import Settings
from fraudctl.topics import ensure_topics
from jobs.flink_client import FlinkClient, FlinkError
from producer.generator import GeneratorOptions, TransactionGenerator
from producer.population import Population, build_population
from stack.layout import Layout
from stack.process import cpu_seconds, descendants
from stack.services import TaskManager

RESULTS = Path(__file__).with_name("results")


def taskmanager_cpu_s(s: Settings) -> float:
    """CPU seconds used so far by the local stack's TaskManagers and what they started (the
    Python UDF workers): two readings give the job's CPU cost over a stretch."""
    tms = TaskManager(s, Layout.from_settings(s)).pids()
    return cpu_seconds([p for tm in tms for p in (tm, *descendants(tm))])


def job_overrides(
    uid: str, partitions: int, checkpoint: str, state_backend: str = "hashmap", parallelism: int = 1
) -> dict[str, Any]:
    """Config overrides that give run `uid` its own topics, job name, group and transactions."""
    return {
        "kafka": {
            "topics": {
                "transactions": f"bench{uid}.transactions",
                "fraud_alerts": f"bench{uid}.fraud_alerts",
                "window_stats": f"bench{uid}.window_stats",
                "dlq": f"bench{uid}.transactions_dlq",
                "truth": f"bench{uid}.truth",
                "rules": f"bench{uid}.fraud_rules",
            },
            "partitions": {"transactions": partitions},
        },
        "flink": {
            "job_name": f"fraud-bench-{uid}",
            "checkpoint_interval": checkpoint,
            "state_backend": state_backend,
            "parallelism": parallelism,
        },
        "job": {"consumer_group": f"fraud-bench-{uid}", "transactional_id_prefix": f"b{uid}"},
    }


def create_topics(s: Settings, partitions: int) -> None:
    """The run's input topic with `partitions` partitions, and its three output topics."""
    t = s.kafka.topics
    ensure_topics(
        s.kafka.bootstrap_servers,
        {t.transactions: partitions, t.fraud_alerts: 1, t.window_stats: 1, t.dlq: 1},
    )


def population_for(eps: float, size: int = 0) -> Population:
    """`size` users, or (0) a population large enough for `eps` (a card rests about 150 s
    between normal purchases), so normal traffic stays quiet and alerts are the scenarios'."""
    return build_population(7, size or max(10_000, int(eps * 200)))


def generator(
    s: Settings, start_ms: int, eps: float, population: Population | None = None
) -> TransactionGenerator:
    """The producer's generator: normal traffic plus 1 % labelled fraud scenarios."""
    population = population or population_for(eps)
    opts = GeneratorOptions(seed=7, start_ms=start_ms, events_per_second=eps, fraud_rate=0.01)
    return TransactionGenerator(population, opts, s.card_token_secret())


def producer(s: Settings, linger_ms: int = 20) -> Producer:
    """A Kafka producer batched for bulk loading the input topic (a small `linger_ms` for
    latency runs, where a record must not wait for its batch)."""
    return Producer(
        {
            "bootstrap.servers": s.kafka.bootstrap_servers,
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "compression.type": "lz4",
        }
    )


class LoadSampler:
    """Samples every job vertex's busy and back-pressured share every `every_s` seconds in a
    background thread: the profile of where a run spent its time (mean over the samples)."""

    def __init__(self, client: FlinkClient, job_id: str, every_s: float = 10.0) -> None:
        self.client, self.job_id, self.every_s = client, job_id, every_s
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                rows = self.client.vertex_load(self.job_id)
            except FlinkError:  # a missed sample is not a failed benchmark
                continue
            for r in rows:
                self.samples.setdefault(r["name"], []).append((r["busy"], r["backpressured"]))

    def profile(self) -> list[dict[str, Any]]:
        """Vertices by mean busy share, busiest first (names shortened to their first
        operators)."""
        rows = [
            {
                "vertex": name if len(name) <= 90 else name[:87] + "...",
                "busy": round(statistics.mean(b for b, _ in vals), 2),
                "backpressured": round(statistics.mean(bp for _, bp in vals), 2),
            }
            for name, vals in self.samples.items()
            if vals
        ]
        return sorted(rows, key=lambda r: r["busy"], reverse=True)
