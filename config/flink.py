"""How jobs reach Flink and how they checkpoint (section `flink`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from config.validators import Duration, HostPort, PositiveInt, duration_ms


class FlinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobmanager: HostPort = "127.0.0.1:8081"
    job_name: str = "fraud-detection"
    parallelism: PositiveInt = 1
    # the cluster never adds TaskManagers (the local stack, a standalone session cluster): a
    # job it has too few task slots for would wait forever, so submit cancels it and says why
    # (FlinkClient.wait_until_running). false: a cluster that starts TaskManagers on demand
    # (native Kubernetes, YARN), where such a job waits for them.
    fixed_slots: bool = True
    # with at-least-once sinks alerts do not wait for checkpoints; every checkpoint snapshots
    # the whole heap state (README, Benchmarks: at 2,000 ev/s 0.25-0.28 CPU ms per event every
    # 60 s against 0.35-0.36 every 30 s, and the snapshots stall the source); a failure
    # replays at most this much input (exactly-once: alerts become readable at this pace)
    checkpoint_interval: Duration = "60 s"
    checkpoint_mode: Literal["EXACTLY_ONCE", "AT_LEAST_ONCE"] = "EXACTLY_ONCE"
    # empty: the cluster's default (the local stack sets one under stack.data_dir)
    checkpoint_dir: str = ""
    # state backend of the job ("" = the cluster's). hashmap keeps keyed state on the heap:
    # 1.6 times the replay throughput of rocksdb here (README, Benchmarks: 9,365 vs 5,892
    # events/s on 1M events, 2026-12-02). rocksdb: for state larger than the TaskManager heap;
    # the local stack then gives RocksDB managed memory and only the job's slots
    # (StackSettings.managed_fraction, StackSettings.slots).
    state_backend: Literal["", "hashmap", "rocksdb"] = "hashmap"
    # exponential-delay restarts: first after restart_delay, doubling up to restart_max_delay;
    # the job fails after restart_attempts restarts without a 1 h healthy stretch in between
    restart_attempts: PositiveInt = 20
    restart_delay: Duration = "5 s"
    restart_max_delay: Duration = "1 min"
    # longest a row waits in the Python UDF operator for its batch to fill (PyFlink's
    # python.fn-execution.bundle.time, 1 s by default, would add up to 1 s to every alert)
    python_bundle_time: Duration = "100 ms"
    # rows per Arrow batch sent to the Python UDF worker (python.fn-execution.arrow.batch.size)
    python_arrow_batch_size: PositiveInt = 1000
    # longest the broker holds a fetch of the input topic to gather 64 KB (Kafka's
    # fetch.max.wait.ms with fetch.min.bytes): the consumer's default of answering each fetch
    # at once, with whatever few records are there, spent a quarter of the TaskManager's CPU
    # polling at 2,000 events/s. A backlog is read at once either way.
    source_fetch_wait: Duration = "50 ms"
    # Python interpreter of the UDF workers; empty: the cluster's python.executable
    python_executable: str = ""
    # Ship udfs/ as target/udfs.zip via `python.files` (for remote clusters whose workers
    # cannot import the project); the local stack's workers import it from the venv.
    ship_udfs: bool = False
    # Kafka SQL connector jar for in-process explain/submit when it is not in Flink's lib/;
    # empty: <stack.cache_dir>/jars/flink-sql-connector-kafka-<version>.jar
    connector_jar: str = ""

    def slots_grace_s(self) -> float | None:
        """How long a submitted job's tasks may wait for slots before the slots are checked
        (FlinkClient.wait_until_running); None: never."""
        return 10.0 if self.fixed_slots else None

    @field_validator("source_fetch_wait")
    @classmethod
    def _fetch_wait_below_request_timeout(cls, value: str) -> str:
        # the Kafka consumer refuses a fetch wait beyond its request timeout (30 s), and every
        # alert waits up to this long
        if duration_ms(value) > 5_000:
            raise ValueError(f"{value!r} is too long: at most 5 s (every alert may wait this long)")
        return value
