"""The stack's services: how each is configured, started, health-checked and found.

Each service knows its pid file, log file and port; `manager.py` drives them uniformly.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from config import Settings
from config.card_token import SECRET_ENV, SECRET_FILE_ENV
from config.kafka import client_config
from config.validators import duration_ms, port_range
from stack.layout import Layout, flink_home
from stack.process import live_pids, port_in_use, spawn, tail

FLINK_IDENT = "fraud"
# what the caller's environment may hold that no Flink daemon needs and none may log: the
# card-token key (the TaskManagers get it as a file) and a MongoDB URI with its password
SECRET_VARIABLES = frozenset({SECRET_ENV, "FRAUD_MONGO__URI"})
# appended to each of Flink's log4j files (the Docker image appends it too)
FLINK_LOG4J_EXTRA = Path(__file__).with_name("flink_log4j_extra.properties")
# Flink's Prometheus reporter, shipped in the wheel's plugins/metrics-prometheus/
PROMETHEUS_REPORTER = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
# Debian's prometheus package (2.42)
PROMETHEUS_BIN = "/usr/bin/prometheus"


@dataclass
class Health:
    ok: bool
    detail: str


class Service(ABC):
    """One local process (or, for Flink, one daemon started by Flink's own scripts)."""

    name: str
    marker: str  # substring of the process command line, checked before trusting a pid

    def __init__(self, settings: Settings, layout: Layout) -> None:
        self.settings = settings
        self.layout = layout
        self.host = settings.stack.host

    @property
    def pid_file(self) -> Path:
        return self.layout.pids / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.layout.logs / f"{self.name}.log"

    @property
    @abstractmethod
    def port(self) -> int | None: ...

    @property
    def ports_to_check(self) -> list[int]:
        """Ports that must be free before this service starts."""
        return [self.port] if self.port else []

    def pids(self) -> list[int]:
        return live_pids(self.pid_file, self.marker)

    @abstractmethod
    def start(self) -> None:
        """Start the process (returns at once; `health()` tells when it is ready)."""

    @abstractmethod
    def health(self) -> Health: ...

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_file, lines)


def kafka_cluster_id() -> str:
    """A random KRaft cluster id (22 url-safe base64 chars) that does not start with "-": the
    storage tool's argument parser would read such an id as an option (as Kafka's own
    Uuid.randomUuid also avoids)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class Kafka(Service):
    """Apache Kafka, one node in KRaft mode (broker + controller), transactions enabled."""

    name = "kafka"
    marker = "kafka.Kafka"

    @property
    def port(self) -> int:
        return self.settings.stack.ports.kafka

    @property
    def ports_to_check(self) -> list[int]:
        return [self.port, self.settings.stack.ports.kafka_controller]

    @property
    def server_properties(self) -> Path:
        return self.layout.kafka_conf / "server.properties"

    def _write_config(self) -> None:
        ports = self.settings.stack.ports
        h = self.host
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{h}:{ports.kafka_controller}",
            "listeners": f"PLAINTEXT://{h}:{ports.kafka},CONTROLLER://{h}:{ports.kafka_controller}",
            "advertised.listeners": f"PLAINTEXT://{h}:{ports.kafka}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.layout.kafka_data),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            # transactions on a single broker (Flink's exactly-once sink needs them)
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "transaction.max.timeout.ms": "3600000",
            "group.initial.rebalance.delay.ms": "0",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "log.retention.hours": "168",
        }
        self.layout.kafka_conf.mkdir(parents=True, exist_ok=True)
        self.server_properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.layout.kafka_conf / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.console.type = Console\n"
            "appender.console.name = STDOUT\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.stdout.ref = STDOUT\n"
            "logger.kafka.name = kafka\nlogger.kafka.level = INFO\n"
            "logger.request.name = kafka.request.logger\nlogger.request.level = WARN\n"
            "logger.state.name = state.change.logger\nlogger.state.level = WARN\n"
        )

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            shutil.which("java") or "java",
            f"-Xmx{self.settings.stack.kafka_heap}",
            f"-Xms{self.settings.stack.kafka_heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.layout.kafka_conf / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.layout.logs}",
            "-cp",
            f"{self.layout.kafka_libs}/*",
            main,
            *args,
        ]

    def start(self) -> None:
        self._write_config()
        if not (self.layout.kafka_data / "meta.properties").exists():
            cluster_id = kafka_cluster_id()
            cmd = self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.server_properties),
                "--ignore-formatted",
            )
            proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise RuntimeError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")
        spawn(
            self._java("kafka.Kafka", str(self.server_properties)),
            self.log_file,
            self.pid_file,
            dict(os.environ),
            self.layout.data,
        )

    def health(self) -> Health:
        from confluent_kafka.admin import AdminClient  # deferred: heavy import

        if not port_in_use(self.host, self.port):
            return Health(False, f"nothing listens on {self.host}:{self.port}")
        try:
            md = AdminClient(
                client_config(
                    f"{self.host}:{self.port}",
                    {
                        "socket.timeout.ms": 3000,
                        "log_level": 0,  # a broker still starting is expected here, not an error
                    },
                )
            ).list_topics(timeout=3)
        except Exception as exc:  # KafkaException and friends: not ready
            return Health(False, f"metadata request failed: {exc}")
        return Health(True, f"{len(md.brokers)} broker, {len(md.topics)} topics")


class _FlinkDaemon(Service):
    """A Flink daemon started with the wheel's own bin/ scripts and our generated conf dir."""

    daemon: str  # flink-daemon.sh's name: standalonesession | taskexecutor

    @property
    def pid_file(self) -> Path:
        return self.layout.pids / f"flink-{FLINK_IDENT}-{self.daemon}.pid"

    @property
    def log_file(self) -> Path:
        logs = sorted(self.layout.logs.glob(f"flink-{FLINK_IDENT}-{self.daemon}-*.log"))
        return logs[-1] if logs else self.layout.logs / f"flink-{FLINK_IDENT}-{self.daemon}.log"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.settings.stack.ports.flink_rest}"

    def env(self) -> dict[str, str]:
        """The daemon's environment: the caller's without its secrets, and the card-token key
        as a file (`FRAUD_CARD_TOKEN_SECRET_FILE`), read by the Python UDF worker. Apache Beam
        logs that worker's whole environment, which is the TaskManager's, when a job stops."""
        return {
            **{k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES},
            "FLINK_CONF_DIR": str(self.layout.flink_conf),
            "FLINK_LOG_DIR": str(self.layout.logs),
            "FLINK_PID_DIR": str(self.layout.pids),
            "FLINK_IDENT_STRING": FLINK_IDENT,
            SECRET_FILE_ENV: str(self.settings.card_token_secret_file()),
        }

    def write_config(self) -> None:
        """Generate conf/ from the wheel's defaults plus the stack's settings."""
        home = flink_home()
        conf = self.layout.flink_conf
        conf.mkdir(parents=True, exist_ok=True)
        for f in (home / "conf").glob("log4j*.properties"):
            (conf / f.name).write_text(f.read_text() + "\n" + FLINK_LOG4J_EXTRA.read_text())
        base = _flatten(yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {})
        s = self.settings.stack
        h = self.host
        python = str(Path(sys.executable))
        base.update(
            {
                "jobmanager.rpc.address": h,
                "jobmanager.rpc.port": s.ports.flink_rpc,
                "jobmanager.bind-host": h,
                "jobmanager.memory.process.size": s.jobmanager_memory,
                "taskmanager.bind-host": h,
                "taskmanager.host": h,
                "taskmanager.numberOfTaskSlots": s.slots(
                    self.settings.flink.state_backend, self.settings.flink.parallelism
                ),
                # a job's slots spread over the TaskManagers (stack.taskmanagers), as on a
                # cluster: with Flink's default a parallelism-2 job can sit in one of two
                "taskmanager.load-balance.mode": "SLOTS",
                "taskmanager.memory.process.size": s.taskmanager_memory,
                "taskmanager.memory.network.min": s.taskmanager_network_memory,
                "taskmanager.memory.network.max": s.taskmanager_network_memory,
                "taskmanager.memory.managed.fraction": s.managed_fraction(
                    self.settings.flink.state_backend
                ),
                "rest.address": h,
                "rest.bind-address": h,
                "rest.port": s.ports.flink_rest,
                "execution.checkpointing.dir": self.layout.checkpoints.as_uri(),
                "execution.checkpointing.savepoint-dir": self.layout.savepoints.as_uri(),
                "execution.checkpointing.externalized-checkpoint-retention": (
                    "RETAIN_ON_CANCELLATION"
                ),
                "execution.checkpointing.num-retained": 3,
                "state.backend.type": "hashmap",
                "env.java.opts.taskmanager": s.taskmanager_jvm_options(),
                "heartbeat.interval": 2000,
                # a TaskManager busy with GC must not be declared lost; a killed one is
                # noticed at once anyway (its RPC connection drops)
                "heartbeat.timeout": 60000,
                # the web UI's flame graphs (and the REST endpoint the benchmarks sample):
                # where each operator spends its time
                "rest.flamegraph.enabled": True,
                "python.executable": python,
                "python.client.executable": python,
                "io.tmp.dirs": str(self.layout.flink_tmp),
                "env.pid.dir": str(self.layout.pids),
                "env.log.dir": str(self.layout.logs),
            }
        )
        if s.metrics:
            # every Flink process serves /metrics on the first free port of the range
            base["metrics.reporter.prom.factory.class"] = PROMETHEUS_REPORTER
            base["metrics.reporter.prom.port"] = s.ports.flink_metrics
        (conf / "config.yaml").write_text(yaml.safe_dump(base, sort_keys=True))
        (conf / "masters").write_text(f"{h}:{s.ports.flink_rest}\n")
        # start-cluster.sh starts one TaskManager per line
        (conf / "workers").write_text("localhost\n" * s.taskmanagers)

    def run_script(self, script: str, *args: str) -> None:
        proc = subprocess.run(
            [str(flink_home() / "bin" / script), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{script} {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")

    def overview(self) -> dict | None:
        try:
            r = requests.get(f"{self.rest_url}/overview", timeout=2)
            return r.json() if r.ok else None
        except (requests.RequestException, ValueError):
            return None


class JobManager(_FlinkDaemon):
    name = "jobmanager"
    daemon = "standalonesession"
    marker = "StandaloneSessionClusterEntrypoint"

    @property
    def port(self) -> int:
        return self.settings.stack.ports.flink_rest

    @property
    def ports_to_check(self) -> list[int]:
        return [self.port, self.settings.stack.ports.flink_rpc]

    def start(self) -> None:
        self.write_config()
        self.run_script("jobmanager.sh", "start")

    def start_cluster(self) -> None:
        """JobManager and TaskManager together, as Flink's own start-cluster.sh does it."""
        self.write_config()
        self.run_script("start-cluster.sh")

    def health(self) -> Health:
        ov = self.overview()
        if ov is None:
            return Health(False, f"{self.rest_url}/overview does not answer")
        return Health(
            True,
            f"Flink {ov.get('flink-version')}, {ov.get('taskmanagers')} TM, "
            f"{ov.get('slots-total')} slots, {ov.get('jobs-running')} jobs running",
        )


def remove_leftover_taskmanager_dirs(layout: Layout) -> list[Path]:
    """Delete the `tm_*` directories of TaskManagers that ended without cleaning up after
    themselves (killed, as the fault tests do); call only while none of the stack's runs."""
    leftovers = sorted(layout.flink_tmp.glob("tm_*"))
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return leftovers


class TaskManager(_FlinkDaemon):
    name = "taskmanager"
    daemon = "taskexecutor"
    marker = "TaskManagerRunner"

    @property
    def port(self) -> None:
        return None

    def start(self) -> None:
        """Start the TaskManagers that are missing (flink-daemon.sh adds one per call)."""
        self.write_config()
        if not self.pids():
            remove_leftover_taskmanager_dirs(self.layout)
        for _ in range(self.settings.stack.taskmanagers - len(self.pids())):
            self.run_script("taskmanager.sh", "start")

    def health(self) -> Health:
        if not self.pids():
            return Health(False, "process not running")
        wanted = self.settings.stack.taskmanagers
        try:
            tms = requests.get(f"{self.rest_url}/taskmanagers", timeout=2).json()["taskmanagers"]
        except (requests.RequestException, ValueError, KeyError):
            return Health(False, "JobManager does not answer")
        import time

        now_ms = time.time() * 1000
        fresh = [t for t in tms if now_ms - t.get("timeSinceLastHeartbeat", 0) < 10_000]
        if len(fresh) < wanted:
            return Health(False, f"{len(fresh)} of {wanted} registered with the JobManager")
        slots = sum(t.get("slotsNumber", 0) for t in fresh)
        return Health(True, f"{len(fresh)} TaskManager(s), {slots} slots registered")


class FerretDB(Service):
    """FerretDB (SQLite backend): the local MongoDB-wire server."""

    name = "ferretdb"
    marker = "ferretdb-launcher"

    @property
    def port(self) -> int:
        return self.settings.stack.ports.mongo

    def start(self) -> None:
        cmd = [
            str(self.layout.ferretdb_bin),
            "--listen-addr",
            f"{self.host}:{self.port}",
            "--state-dir",
            str(self.layout.ferretdb_data),
            "--log-level",
            "error",  # at warn it logs every unsupported command (pymongo's endSessions)
        ]
        spawn(cmd, self.log_file, self.pid_file, dict(os.environ), self.layout.data)

    def health(self) -> Health:
        import pymongo  # deferred: only status checks need it

        client = pymongo.MongoClient(
            f"mongodb://{self.host}:{self.port}/?directConnection=true",
            serverSelectionTimeoutMS=1500,
            connectTimeoutMS=1500,
        )
        try:
            client.admin.command("ping")
            version = client.server_info().get("version", "?")
        except Exception as exc:  # pymongo's errors: not ready
            return Health(False, f"ping failed: {type(exc).__name__}")
        finally:
            client.close()
        return Health(True, f"ping ok (MongoDB wire {version})")


class MongoSink(Service):
    """The Kafka -> MongoDB consumer (`fraudctl sink`), started by the demo, not by `up`."""

    name = "sink"
    marker = "fraudctl sink"

    @property
    def port(self) -> None:
        return None

    def start(self) -> None:
        fraudctl = Path(sys.executable).with_name("fraudctl")
        env = dict(os.environ)
        spawn([str(fraudctl), "sink"], self.log_file, self.pid_file, env, self.layout.data)

    def health(self) -> Health:
        return Health(bool(self.pids()), "consuming" if self.pids() else "not running")


def _prometheus_duration(value: str) -> str:
    """A config duration ("10 s", "7 d") as Prometheus writes one ("10s", "604800s")."""
    ms = duration_ms(value)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


class Prometheus(Service):
    """A Prometheus server (Debian's package) scraping the stack's Flink reporter ports and
    the `fraudctl sink` / `notify` endpoints that announce themselves (file-based service
    discovery in stack.metrics_targets_dir()). Started by `up` when stack.metrics is on."""

    name = "prometheus"

    @property
    def marker(self) -> str:  # type: ignore[override]
        # its own config file: the default stack's server and a test stack's are told apart
        return f"--config.file={self.config_file}"

    @property
    def port(self) -> int:
        return self.settings.stack.ports.prometheus

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.layout.prometheus_conf / "prometheus.yml"

    def scrape_config(self) -> dict:
        """prometheus.yml: Flink's reporter ports (every port of stack.ports.flink_metrics on
        the stack's host; the unused ones are targets that are down), and the sink and
        notifier endpoints announced in the targets directory."""
        s = self.settings.stack
        interval = _prometheus_duration(s.metrics_scrape_interval)
        timeout = _prometheus_duration(min(s.metrics_scrape_interval, "10 s", key=duration_ms))
        targets = s.metrics_targets_dir()
        return {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": timeout,
                "evaluation_interval": interval,
            },
            "scrape_configs": [
                {
                    "job_name": "flink",
                    "static_configs": [
                        {"targets": [f"{self.host}:{p}" for p in port_range(s.ports.flink_metrics)]}
                    ],
                },
                *(
                    {
                        "job_name": f"fraudctl_{role}",
                        "file_sd_configs": [
                            {"files": [str(targets / f"{role}-*.json")], "refresh_interval": "30s"}
                        ],
                    }
                    for role in ("sink", "notify")
                ),
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"{self.host}:{self.port}"]}],
                },
            ],
        }

    def start(self) -> None:
        self.layout.prometheus_conf.mkdir(parents=True, exist_ok=True)
        self.layout.prometheus_data.mkdir(parents=True, exist_ok=True)
        self.settings.stack.metrics_targets_dir().mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.scrape_config(), sort_keys=False))
        cmd = [
            PROMETHEUS_BIN,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.layout.prometheus_data}",
            "--storage.tsdb.retention.time="
            + _prometheus_duration(self.settings.stack.metrics_retention),
            f"--web.listen-address={self.host}:{self.port}",
            "--log.level=warn",
        ]
        # it needs none of the caller's secrets
        env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
        spawn(cmd, self.log_file, self.pid_file, env, self.layout.data)

    def health(self) -> Health:
        try:
            r = requests.get(f"{self.url}/-/ready", timeout=2)
        except requests.RequestException:
            return Health(False, f"{self.url}/-/ready does not answer")
        if not r.ok:
            return Health(False, f"{self.url}/-/ready: HTTP {r.status_code}")
        try:
            active = requests.get(f"{self.url}/api/v1/targets", timeout=2).json()["data"][
                "activeTargets"
            ]
        except (requests.RequestException, ValueError, KeyError):
            return Health(True, "ready")
        up = sum(t.get("health") == "up" for t in active)
        return Health(True, f"ready, {up} of {len(active)} targets up")


def _flatten(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def optional_services(settings: Settings, layout: Layout) -> list[Service]:
    """Started on demand (by the demo), stopped by `stack down` with the rest; and Prometheus
    while stack.metrics is off, so a server started before it was turned off still shows in
    `status` and stops with `down`."""
    extra: list[Service] = [] if settings.stack.metrics else [Prometheus(settings, layout)]
    return [MongoSink(settings, layout), *extra]


def all_services(settings: Settings, layout: Layout) -> list[Service]:
    """The core services, in start order (Prometheus last, when stack.metrics is on)."""
    services: list[Service] = [
        Kafka(settings, layout),
        FerretDB(settings, layout),
        JobManager(settings, layout),
        TaskManager(settings, layout),
    ]
    if settings.stack.metrics:
        services.append(Prometheus(settings, layout))
    return services
