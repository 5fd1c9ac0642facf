"""Prometheus endpoints of the long-running verbs (`fraudctl notify`, `fraudctl sink`).

Each run gets a registry of its own (several runs in one process, as in tests, do not collide),
served on a port from a daemon thread, and can follow its consumer group's lag: records of
its topics the group has not committed yet (fraudctl.topics.group_progress), refreshed
every `LAG_EVERY_S` seconds in a thread.

With the local stack's metrics on (`stack.metrics`), a served endpoint announces itself to the
stack's Prometheus: a file `<role>-<port>.json` in `stack.metrics_targets_dir()` (Prometheus's
file-based service discovery, docs/monitoring.md), removed again by `close`. So Prometheus
scrapes a sink or notifier that runs, on whichever port it was given.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from config import Settings

LAG_EVERY_S = 10.0


class Endpoint:
    """A registry, its HTTP server once `serve` is called, and the lag thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._server: Any = None
        self._stop = threading.Event()
        self._announcement: Path | None = None

    def serve(self, port: int, settings: Settings | None = None, role: str = "") -> None:
        """Serve /metrics on `port` (all interfaces); with `settings` whose `stack.metrics`
        is on, announce it to the stack's Prometheus as a target of job `fraudctl_<role>`."""
        self._server, _ = start_http_server(port, registry=self.registry)
        if settings is not None and role and settings.stack.metrics:
            try:
                self._announcement = announce(settings, role, port)
            except OSError as exc:  # no local stack to tell (a read-only install): serve anyway
                logging.getLogger(__name__).warning("metrics port not announced: %s", exc)

    def close_announcement(self) -> None:
        if self._announcement is not None:
            self._announcement.unlink(missing_ok=True)
            self._announcement = None

    def follow_lag(
        self,
        gauge: Gauge,
        settings: Settings,
        group: str,
        topics: Sequence[str],
        log: logging.Logger,
    ) -> None:
        """Set `gauge{topic}` to `group`'s lag on each of `topics` until `close`."""
        from fraudctl.topics import group_progress

        def _loop() -> None:
            warned = False
            while not self._stop.is_set():
                try:
                    for topic in topics:
                        done, end = group_progress(settings, group, [topic])
                        gauge.labels(topic).set(max(end - done, 0))
                    warned = False
                except Exception as exc:  # Kafka unreachable: keep the last value
                    if not warned:
                        log.warning("consumer lag not measured: %s", exc)
                        warned = True
                self._stop.wait(LAG_EVERY_S)

        threading.Thread(target=_loop, name="metrics-lag", daemon=True).start()

    def close(self) -> None:
        self.close_announcement()
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def announce(settings: Settings, role: str, port: int) -> Path:
    """Write the file-based service discovery entry of an endpoint of `role` (`sink`,
    `notify`) on `port` of the stack's host, atomically; returns its path."""
    directory = settings.stack.metrics_targets_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{role}-{port}.json"
    entry = [{"targets": [f"{settings.stack.host}:{port}"]}]
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)
    return path
