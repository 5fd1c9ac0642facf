"""A second, private local stack for tests that kill or restart services.

It has its own ports and directories (only the install cache is shared), so killing its
processes never disturbs the default stack or other tests. Its directories live under
`.run/test-stacks/`, not pytest's basetemp: a concurrent pytest session prunes old basetemps.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from config import Settings, load_settings
from config.settings import deep_merge
from config.stack import PROJECT_ROOT
from stack.process import port_in_use


def scratch_dir(prefix: str) -> Path:
    root = PROJECT_ROOT / ".run" / "test-stacks"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def free_ports(n: int) -> list[int]:
    """Free ports below the kernel's ephemeral range, so no client socket can take them later."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < n:
        port = rng.randrange(20000, min(low, 32000))
        if port not in ports and not port_in_use("127.0.0.1", port):
            ports.append(port)
    return ports


def free_port_range(n: int, taken: Sequence[int] = ()) -> range:
    """`n` consecutive free ports below the ephemeral range, none of them in `taken`: a test
    stack's Flink reporter range, apart from the default stack's (9249-9259) and any other."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    while True:
        start = rng.randrange(20000, min(low, 32000) - n)
        ports = range(start, start + n)
        if not set(ports) & set(taken) and not any(port_in_use("127.0.0.1", p) for p in ports):
            return ports


def stack_overrides(
    root: Path, slots: int = 2, taskmanagers: int = 1, metrics: bool = False
) -> dict[str, Any]:
    """A private stack's settings; `metrics`: with Prometheus and Flink's reporter (on a
    private port and port range), otherwise without (the default config has them on)."""
    kafka, controller, rest, rpc, mongo, prometheus = free_ports(6)
    reporter = free_port_range(taskmanagers + 3, [kafka, controller, rest, rpc, mongo, prometheus])
    return {
        "stack": {
            "ports": {
                "kafka": kafka,
                "kafka_controller": controller,
                "flink_rest": rest,
                "flink_rpc": rpc,
                "mongo": mongo,
                "prometheus": prometheus,
                "flink_metrics": f"{reporter[0]}-{reporter[-1]}",
            },
            "metrics": metrics,
            "metrics_scrape_interval": "2 s",
            "data_dir": str(root / "data"),
            "log_dir": str(root / "logs"),
            "run_dir": str(root / "pids"),
            "taskmanager_slots": slots,
            "taskmanagers": taskmanagers,
            "taskmanager_memory": "1600m",
            "kafka_heap": "512m",
            "start_timeout_s": 120,
        },
        "kafka": {"bootstrap_servers": f"127.0.0.1:{kafka}"},
        "flink": {"jobmanager": f"127.0.0.1:{rest}"},
        "mongo": {"uri": f"mongodb://127.0.0.1:{mongo}/?directConnection=true"},
    }


def write_config(path: Path, overrides: dict[str, Any]) -> Path:
    """The default config with `overrides` merged in, as a YAML file for FRAUD_CONFIG."""
    base = yaml.safe_load((PROJECT_ROOT / "config" / "default.yaml").read_text())
    path.write_text(yaml.safe_dump(deep_merge(base, overrides)))
    return path


@contextmanager
def isolated_stack(
    prefix: str, start: bool = False, taskmanagers: int = 1, metrics: bool = False
) -> Iterator[tuple[Settings, Path, dict]]:
    """Yield (settings, config file, overrides) of a private stack (of `taskmanagers`
    TaskManagers with 2 slots each; `metrics`: with its own Prometheus); stopped and removed
    after."""
    from stack import manager

    root = scratch_dir(prefix)
    overrides = stack_overrides(root, taskmanagers=taskmanagers, metrics=metrics)
    settings = load_settings(**overrides)
    config_file = write_config(root / "stack.yaml", overrides)
    try:
        if start:
            manager.up(settings)
        yield settings, config_file, overrides
    finally:
        manager.down(settings)
        if not os.environ.get("KEEP_TEST_STACKS"):  # keep logs and data for a post-mortem
            shutil.rmtree(root, ignore_errors=True)
