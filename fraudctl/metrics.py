"""Prometheus endpoints of the long-running verbs (`fraudctl notify`, `fraudctl sink`).

Each run gets a registry of its own (several runs in one process, as in tests, do not collide),
served on a port from a daemon thread, and can follow its consumer group's lag: records of
its topics the group has not committed yet (fraudctl.topics.group_progress), refreshed
every `LAG_EVERY_S` seconds in a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
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

    def serve(self, port: int) -> None:
        """Serve /metrics on `port` (all interfaces)."""
        self._server, _ = start_http_server(port, registry=self.registry)

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
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
