"""A small client for Prometheus's HTTP API (`/api/v1/query`, label values, readiness): what
`fraudctl top` and the tests read the figures with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


class PrometheusError(RuntimeError):
    """Prometheus is unreachable or refused a query; the message says which and what to do."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant query's answer: its labels and value."""

    labels: dict[str, str]
    value: float


class Prometheus:
    """The HTTP API of one Prometheus server, e.g. `Prometheus("http://127.0.0.1:9090")`."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, **params: Any) -> Any:
        try:
            resp = requests.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} is unreachable ({type(exc).__name__}): is the stack "
                "up with stack.metrics on (`fraudctl stack status`), or is --prometheus the "
                "right address?"
            ) from exc
        try:
            body = resp.json()
        except ValueError as exc:
            raise PrometheusError(
                f"{self.url}{path} answered HTTP {resp.status_code} without JSON: is it a "
                "Prometheus server?"
            ) from exc
        if body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus refused {params or path}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=self.timeout_s).ok
        except requests.RequestException:
            return False

    def query(self, expr: str) -> list[Sample]:
        """An instant query's samples (a scalar answer: one sample without labels)."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [Sample({}, float(data["result"][1]))]
        return [
            Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"] if "value" in r
        ]

    def metric_names(self) -> list[str]:
        """Every metric name Prometheus holds (`/api/v1/label/__name__/values`)."""
        return list(self._get("/api/v1/label/__name__/values"))

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets: `labels` (job, instance), `health`, `lastError`."""
        return list(self._get("/api/v1/targets", state="active")["activeTargets"])
