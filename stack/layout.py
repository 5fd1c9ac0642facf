"""Where each piece of the local stack lives on disk, derived from `stack` settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config import Settings
from stack.versions import versions


def flink_home() -> Path:
    """FLINK_HOME of the pinned PyFlink wheel installed in this venv."""
    import pyflink  # deferred: importing pyflink is slow and only the stack needs its path

    return Path(pyflink.__file__).resolve().parent


@dataclass(frozen=True)
class Layout:
    cache: Path
    data: Path
    logs: Path
    pids: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Layout:
        s = settings.stack
        return cls(
            cache=s.resolve(s.cache_dir),
            data=s.resolve(s.data_dir),
            logs=s.resolve(s.log_dir),
            pids=s.resolve(s.run_dir),
        )

    # downloaded and built artifacts (cached, shared by every data dir)
    @property
    def kafka_libs(self) -> Path:
        return self.cache / f"kafka-{versions()['kafka']}" / "libs"

    @property
    def jars(self) -> Path:
        return self.cache / "jars"

    @property
    def ferretdb_bin(self) -> Path:
        return self.cache / "bin" / f"ferretdb-launcher-{versions()['ferretdb']}"

    @property
    def node_prefix(self) -> Path:
        return self.cache / "node"

    @property
    def mongosh_bin(self) -> Path:
        return self.node_prefix / "bin" / "mongosh"

    # per-stack state
    @property
    def kafka_data(self) -> Path:
        return self.data / "kafka"

    @property
    def kafka_conf(self) -> Path:
        return self.data / "kafka-conf"

    @property
    def flink_conf(self) -> Path:
        return self.data / "flink-conf"

    @property
    def flink_tmp(self) -> Path:
        """The daemons' io.tmp.dirs: a TaskManager unpacks each job's jars and Python files
        here (about 1 GB a TaskManager), not in /tmp."""
        return self.data / "flink-tmp"

    @property
    def checkpoints(self) -> Path:
        return self.data / "flink-checkpoints"

    @property
    def savepoints(self) -> Path:
        return self.data / "flink-savepoints"

    @property
    def ferretdb_data(self) -> Path:
        return self.data / "ferretdb"

    @property
    def prometheus_conf(self) -> Path:
        return self.data / "prometheus-conf"

    @property
    def prometheus_data(self) -> Path:
        return self.data / "prometheus"

    def ensure_dirs(self) -> None:
        for d in (self.cache, self.data, self.logs, self.pids):
            d.mkdir(parents=True, exist_ok=True)
