"""On call: what the stack's Prometheus scrapes and how to read it.

- `figures.py`: the on-call figures as PromQL (alerts per rule, dead letters, late events,
  re-deliveries, rule versions, lags, checkpoints, busy time), named once;
- `prometheus.py`: a small client of Prometheus's HTTP API;
- `cli.py`: `fraudctl top`, the figures live in the terminal;
- `grafana/`, `prometheus.yml`: the dashboard and the scrape config of docker-compose.yml.

The local stack's own Prometheus (its config written by stack/services.py) is in `stack/`.
See docs/monitoring.md.
"""
