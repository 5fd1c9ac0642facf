"""What the job benchmarks share: a fresh job on fresh topics, its input, and its profile.

Each benchmark run gets unique topic names, consumer group, transactional ids and lake, so runs
never see each other's data; the input comes from the producer's own generator.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from config import Settings
from fraudctl.topics import TopicError, delete_topics, ensure_topics
from jobs.cluster.flink_client import FlinkClient, FlinkError
from producer.generator import GeneratorOptions, TransactionGenerator
from producer.population import Population, build_population
from stack.layout import Layout
from stack.process import cpu_seconds, descendants, resident_bytes
from stack.services import TaskManager

RESULTS = Path(__file__).with_name("results")
# each run's own lake (lake.path), removed with its topics unless kept
LAKES = Path(__file__).resolve().parent.parent / ".run" / "bench-lakes"


def taskmanager_pids(s: Settings) -> list[int]:
    """The local stack's TaskManagers and what they started (the Python UDF workers)."""
    tms = TaskManager(s, Layout.from_settings(s)).pids()
    return [p for tm in tms for p in (tm, *descendants(tm))]


def taskmanager_cpu_s(s: Settings) -> float:
    """CPU seconds used so far by the TaskManagers and their Python workers: two readings give
    the job's CPU cost over a stretch."""
    return cpu_seconds(taskmanager_pids(s))


def job_overrides(
    uid: str, partitions: int, checkpoint: str, state_backend: str = "hashmap", parallelism: int = 1
) -> dict[str, Any]:
    """Config overrides that give run `uid` its own topics, job name, group, transactions and
    lake."""
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
        "lake": {"path": str(LAKES / uid)},
    }


def create_topics(s: Settings, partitions: int) -> None:
    """The run's input topic with `partitions` partitions, and its three output topics."""
    t = s.kafka.topics
    ensure_topics(
        s.kafka.bootstrap_servers,
        {t.transactions: partitions, t.fraud_alerts: 1, t.window_stats: 1, t.dlq: 1},
    )


@contextlib.contextmanager
def run_topics(s: Settings, partitions: int, keep: bool = False) -> Iterator[None]:
    """The run's topics (`create_topics`, and the rules topic the job creates) for the length of
    a `with`, deleted after it with the run's lake unless `keep`: a replay of 1M events leaves
    some 0.25 GB on the broker's disk and 50 MB of lake, and every run has its own."""
    create_topics(s, partitions)
    try:
        yield
    finally:
        t = s.kafka.topics
        names = [t.transactions, t.fraud_alerts, t.window_stats, t.dlq, t.rules, t.truth]
        if keep:
            print(f"kept the run's topics: {', '.join(names)}", flush=True)
            print(f"kept the run's lake: {s.lake_uri()}", flush=True)
        else:
            remove_topics(s.kafka.bootstrap_servers, names)
            shutil.rmtree(LAKES / s.lake.path.rsplit("/", 1)[-1], ignore_errors=True)


def remove_topics(bootstrap_servers: str, names: list[str]) -> None:
    """Delete a benchmark's own topics; a failure is reported, not raised, since the figures
    measured stand without the clean-up."""
    try:
        delete_topics(bootstrap_servers, names)
    except TopicError as exc:
        print(f"note: the run's topics were not all deleted ({exc}); delete them by hand")


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
    """Samples, every `every_s` seconds in a background thread, every job vertex's busy and
    back-pressured share (where a run spent its time) and the TaskManagers' memory: heap and
    garbage collections from their JVM metrics, resident memory of their processes and Python
    workers (what a run needed)."""

    def __init__(self, s: Settings, client: FlinkClient, job_id: str, every_s: float = 5.0) -> None:
        self.s, self.client, self.job_id, self.every_s = s, client, job_id, every_s
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.jvm: list[dict[str, dict[str, float]]] = []
        self.resident: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoadSampler:
        self._sample_memory()  # the collections before the run, to count the run's own
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._sample_memory()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample_memory()
            try:
                rows = self.client.vertex_load(self.job_id)
            except FlinkError:  # a missed sample is not a failed benchmark
                continue
            for r in rows:
                self.samples.setdefault(r["name"], []).append((r["busy"], r["backpressured"]))

    def _sample_memory(self) -> None:
        self.resident.append(resident_bytes(taskmanager_pids(self.s)))
        with contextlib.suppress(FlinkError):  # a missed sample is not a failed benchmark
            self.jvm.append(self.client.taskmanager_jvm())

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

    def memory(self) -> dict[str, Any]:
        """The TaskManagers' memory over the run (summed over TaskManagers; peaks as sampled):
        their heap limit and fullest sampled heap, the most resident memory of their processes
        with the Python workers, and the collections and pause seconds of each collector."""
        return memory_summary(self.jvm, self.resident)


def memory_summary(jvm: list[dict[str, dict[str, float]]], resident: list[int]) -> dict[str, Any]:
    """`LoadSampler.memory` from its samples: `jvm` readings of `FlinkClient.taskmanager_jvm`
    in time order, `resident` bytes. A TaskManager's collections count from its first reading
    to its last (a TaskManager that restarted counts from zero again)."""
    mb = 1024 * 1024
    heap = [sum(tm["heap_used"] for tm in reading.values()) for reading in jvm]
    collectors: dict[str, dict[str, float]] = {}
    for tm_id in {tm for reading in jvm for tm in reading}:
        readings = [reading[tm_id] for reading in jvm if tm_id in reading]
        first, last = readings[0], readings[-1]
        for key, value in last.items():
            name, _, unit = key.rpartition(".")
            if unit not in ("count", "ms"):
                continue
            used = value - first.get(key, 0.0) if value >= first.get(key, 0.0) else value
            totals = collectors.setdefault(name, {"collections": 0, "seconds": 0.0})
            if unit == "count":
                totals["collections"] += int(used)
            else:
                totals["seconds"] = round(totals["seconds"] + used / 1000, 1)
    return {
        "heap_max_mb": round(
            max((sum(tm["heap_max"] for tm in r.values()) for r in jvm), default=0) / mb
        ),
        "heap_peak_mb": round(max(heap, default=0) / mb),
        "resident_peak_mb": round(max(resident, default=0) / mb),
        "collections": dict(sorted(collectors.items())),
    }
