"""Where the local stack lives and which ports it binds (section `stack`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from config.validators import Duration, MemorySize, Port, PortRange, PositiveInt

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StackPorts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kafka: Port = 9092
    kafka_controller: Port = 9093
    flink_rest: Port = 8081
    flink_rpc: Port = 6123
    mongo: Port = 27017
    # the stack's Prometheus server (stack.metrics)
    prometheus: Port = 9090
    # Flink's Prometheus reporter: the JobManager and each TaskManager serve /metrics on the
    # first free port of this range (so a range, one port per Flink process; Prometheus
    # scrapes all of it)
    flink_metrics: PortRange = "9249-9259"


class StackSettings(BaseModel):
    """Local processes started by `fraudctl stack up`. Relative paths are under the checkout."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    ports: StackPorts = Field(default_factory=StackPorts)
    cache_dir: Path = Path(".cache")
    data_dir: Path = Path(".run/data")
    log_dir: Path = Path(".run/logs")
    run_dir: Path = Path(".run/pids")
    # TaskManager processes (each with taskmanager_slots slots and taskmanager_memory): the
    # local way to run the job at a parallelism spread over several JVMs, as on a real cluster
    taskmanagers: PositiveInt = Field(default=1, le=8)
    # task slots per TaskManager; unset: chosen for the job (`slots`)
    taskmanager_slots: PositiveInt | None = None
    # the job's keyed state lives on the TaskManager heap (flink.state_backend hashmap), so most
    # of the process goes to the heap: managed memory only serves the Python UDF workers. With
    # flink.state_backend rocksdb it also holds RocksDB's block cache and write buffers.
    taskmanager_memory: MemorySize = "8g"
    # network buffers of the exchanges between the job's operators (Flink's default: a tenth of
    # the TaskManager, 746 MB at 8g and 343 MB at 4g)
    taskmanager_network_memory: MemorySize = "64m"
    # share of the TaskManager's memory that is managed; unset: chosen for the state backend
    # (`managed_fraction`)
    taskmanager_managed_fraction: float | None = Field(default=None, gt=0, lt=1)
    # the least share of the TaskManager heap that G1 keeps for new objects (percent; 0: the JVM
    # decides). The job allocates some 100 KB of short-lived objects per event; with G1's own
    # sizing the young generation shrank to about 250 MB and was collected every 1-2 s, each
    # pause copying newly changed state (2,000 ev/s: 161 pauses, 27 s in 330 s; 20 %: 56, 19 s)
    taskmanager_young_percent: int = Field(default=20, ge=0, le=50)
    jobmanager_memory: MemorySize = "1g"
    kafka_heap: MemorySize = "1g"
    start_timeout_s: PositiveInt = 120
    # on call: Flink's Prometheus reporter on (ports.flink_metrics), and `stack up` starts a
    # Prometheus server (ports.prometheus; Debian's package, installed with the stack) that
    # scrapes Flink, `fraudctl sink` and `fraudctl notify` (docs/monitoring.md)
    metrics: bool = True
    # how often Prometheus scrapes each target; how long it keeps what it scraped
    metrics_scrape_interval: Duration = "10 s"
    metrics_retention: Duration = "7 d"

    def managed_fraction(self, state_backend: str) -> float:
        """taskmanager_managed_fraction, or for the job's state backend: 0.15 when state is on
        the heap, 0.4 for rocksdb (measured on the 300k replay: 2,728 ev/s at 0.15, 4,163 at
        0.4, against 9,250 on the heap)."""
        if self.taskmanager_managed_fraction is not None:
            return self.taskmanager_managed_fraction
        return 0.4 if state_backend == "rocksdb" else 0.15

    def slots(self, state_backend: str, parallelism: int) -> int:
        """taskmanager_slots, or for the job: 4 when its state is on the heap (room for a
        parallelism of 4 and a second job); with rocksdb only the job's subtasks per
        TaskManager. Flink splits a TaskManager's managed memory evenly over its slots, and
        RocksDB's cache and write buffers get their slot's share: on 4 slots a job at
        parallelism 1 had a quarter of it (README, Benchmarks: RocksDB and task slots)."""
        if self.taskmanager_slots is not None:
            return self.taskmanager_slots
        if state_backend == "rocksdb":
            return -(-parallelism // self.taskmanagers)
        return 4

    def taskmanager_jvm_options(self) -> str:
        """JVM options of the TaskManager beyond Flink's own (its memory flags stay Flink's)."""
        if not self.taskmanager_young_percent:
            return ""
        # G1NewSizePercent is an experimental flag of HotSpot's G1 (JDK 17)
        return (
            "-XX:+UnlockExperimentalVMOptions "
            f"-XX:G1NewSizePercent={self.taskmanager_young_percent}"
        )

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (PROJECT_ROOT / path)

    def metrics_targets_dir(self) -> Path:
        """Where a `fraudctl sink` or `notify` serving metrics announces its port to the stack's
        Prometheus (one JSON file each, Prometheus's file-based service discovery)."""
        return self.resolve(self.data_dir) / "prometheus-targets"
