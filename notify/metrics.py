"""Prometheus metrics of `fraudctl notify` (names in docs/contract.md, "Metrics: fraudctl notify").

- `fraud_notify_notifications_total{destination, outcome}`: outcome `sent`, `retried` (one per
  failed attempt that will be tried again), `dead_lettered`, `duplicate_skipped` (the claim
  was settled already: a re-sent or replayed alert);
- `fraud_notify_alerts_seen_total{result}`: records read from fraud_alerts, `notify` (at or
  above the minimum severity), `below_min_severity`, `invalid`;
- `fraud_notify_consumer_lag{topic}`: records of fraud_alerts the notifier's consumer group
  has not committed yet (refreshed every 10 s).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from fraudctl.metrics import Endpoint

OUTCOMES = ("sent", "retried", "dead_lettered", "duplicate_skipped")
SEEN = ("notify", "below_min_severity", "invalid")


class Metrics(Endpoint):
    def __init__(self, destinations: list[str]) -> None:
        super().__init__()
        self.notifications = Counter(
            "fraud_notify_notifications",
            "Notifications by destination and outcome.",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.alerts_seen = Counter(
            "fraud_notify_alerts_seen",
            "Records read from fraud_alerts, by what became of them.",
            ["result"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "fraud_notify_consumer_lag",
            "Records of the topic the notifier's consumer group has not committed.",
            ["topic"],
            registry=self.registry,
        )
        for name in destinations:  # every series exists from the start, at 0
            for outcome in OUTCOMES:
                self.notifications.labels(name, outcome)
        for result in SEEN:
            self.alerts_seen.labels(result)
