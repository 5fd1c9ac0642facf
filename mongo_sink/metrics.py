"""Prometheus metrics of `fraudctl sink`, served when `mongo.metrics_port` is set (names in
docs/contract.md, "Metrics: fraudctl sink"):

- `fraud_sink_documents_written_total{collection}`: documents inserted or replaced (replays
  that change nothing are not counted);
- `fraud_sink_consumer_lag{topic}`: records of fraud_alerts and window_stats the sink's
  consumer group has not committed yet (refreshed every 10 s).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from config import Settings
from fraudctl.metrics import Endpoint

if TYPE_CHECKING:
    from mongo_sink.consumer import SinkStats


class _Written(Collector):
    """Reads the sink's running totals at each scrape."""

    def __init__(self, stats: SinkStats, collections: Sequence[str]) -> None:
        self.stats, self.collections = stats, collections

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "fraud_sink_documents_written",
            "Documents inserted or replaced in MongoDB, by collection.",
            labels=["collection"],
        )
        written = dict(self.stats.written_by_collection)
        for coll in sorted({*self.collections, *written}):
            family.add_metric([coll], written.get(coll, 0))
        yield family


def serve(
    settings: Settings, stats: SinkStats, topics: Sequence[str], log: logging.Logger
) -> Endpoint | None:
    """Start the sink's endpoint on `mongo.metrics_port`; None when that is 0 (off)."""
    m = settings.mongo
    if not m.metrics_port:
        return None
    endpoint = Endpoint()
    collections = [m.alerts_collection, m.window_stats_collection, m.dead_letters_collection]
    endpoint.registry.register(_Written(stats, collections))
    lag = Gauge(
        "fraud_sink_consumer_lag",
        "Records of the topic the sink's consumer group has not committed.",
        ["topic"],
        registry=endpoint.registry,
    )
    endpoint.serve(m.metrics_port, settings, "sink")
    endpoint.follow_lag(lag, settings, m.consumer_group, topics, log)
    log.info("metrics on :%d/metrics", m.metrics_port)
    return endpoint
