"""The on-call metrics end to end, on a private stack with its Prometheus (stack.metrics on):
the crafted input (one hit per rule, bad, re-delivered and late records) through the real
job, with `fraudctl sink` and `fraudctl notify` serving metrics on ports of their own; then
Prometheus's HTTP API must give the figures that the run implies, the dashboard's queries must
read only metrics Prometheus has, and `fraudctl top` must show them.

The whole module costs one private stack and one job (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from config import Settings
from config.rules import rule_names
from config.settings import environment_overrides
from config.stack import PROJECT_ROOT
from monitoring import figures
from monitoring.prometheus import Prometheus, Sample
from tests.isolated_stack import free_ports, isolated_stack
from tests.jobs.crafted import Crafted, build
from tests.jobs.live_job import LiveJob
from tests.monitoring.promql import dashboard_expressions, instant, metric_names
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class _Hook(BaseHTTPRequestHandler):
    """A webhook that accepts every POST (the notifier's destination)."""

    posts: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).posts.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class MetricsRun:
    settings: Settings
    prometheus: Prometheus
    crafted: Crafted
    job: LiveJob
    job_label: str  # the job's name as the reporter's `job_name` label writes it
    alerts: list[dict[str, Any]]
    logs: dict[str, str] = field(default_factory=dict)
    started_s: float = 0.0

    def of_job(self, samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if s.labels.get("job_name") == self.job_label]

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {s.labels.get(label, ""): s.value for s in self.of_job(self.prometheus.query(expr))}

    def one(self, expr: str) -> float | None:
        samples = self.of_job(self.prometheus.query(expr))
        return samples[0].value if samples else None


def _spawn(args: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fraudctl.app", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def run() -> Iterator[MetricsRun]:
    t0 = time.monotonic()
    with isolated_stack("metrics-", start=True, metrics=True) as (settings, _, overrides):
        crafted = build()
        uid = uuid.uuid4().hex[:10]
        job = LiveJob.create(settings, uid, stack=overrides)
        hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        sink_port, notify_port = free_ports(2)
        root = settings.stack.resolve(settings.stack.log_dir)
        env = {
            **os.environ,
            **environment_overrides(job.overrides),
            "FRAUD_MONGO__METRICS_PORT": str(sink_port),
            "FRAUD_NOTIFY__METRICS_PORT": str(notify_port),
            "FRAUD_NOTIFY_WEBHOOK_URLS": f"oncall=http://127.0.0.1:{hook.server_address[1]}/hook",
        }
        procs: list[subprocess.Popen] = []
        try:
            job.produce(crafted.records)
            job.start()
            procs.append(_spawn(["sink"], env, str(root / "test-sink.log")))
            procs.append(_spawn(["notify"], env, str(root / "test-notify.log")))
            topic = job.settings.kafka.topics.fraud_alerts
            n_alerts = sum(crafted.expected_alerts.values())
            n_late = len(crafted.late_records)
            # as in tests/jobs/test_job_live.py: the late transaction goes in once the flush
            # has moved the watermark past it
            job.read(topic, lambda m: len(m) >= n_alerts - n_late, 240)
            job.produce(crafted.late_records)
            alerts = job.read(topic, lambda m: len(m) >= n_alerts, 240, 4)
            yield MetricsRun(
                settings=settings,
                prometheus=Prometheus(f"http://127.0.0.1:{settings.stack.ports.prometheus}"),
                crafted=crafted,
                job=job,
                job_label=job.settings.flink.job_name.replace("-", "_"),
                alerts=[m["value"] for m in alerts],
                started_s=time.monotonic() - t0,
            )
        finally:
            for proc in procs:
                _stop(proc)
            job.close()
            job.delete_topics()
            hook.shutdown()
            hook.server_close()


def test_alerts_per_rule_are_the_alerts_the_run_wrote(run: MetricsRun) -> None:
    wanted = Counter(rule.lower() for rule, _ in run.crafted.expected_alerts.elements())
    assert Counter(a["rule"].lower() for a in run.alerts) == wanted
    got = wait_until(
        lambda: (lambda by: by if by == dict(wanted) else None)(
            {k: int(v) for k, v in run.by(figures.ALERTS_BY_RULE, "rule").items() if v}
        ),
        90,
        f"alerts per rule {dict(wanted)} in Prometheus",
        every_s=2,
    )
    assert got["high_value"] >= 1
    # every rule's sink reports, the ones without alerts at 0
    assert set(run.by(figures.ALERTS_BY_RULE, "rule")) == set(rule_names())


def test_dead_letters_by_reason_and_late_events(run: MetricsRun) -> None:
    wanted = dict(run.crafted.expected_dlq)  # the contract's reasons, late_event among them
    late = len(run.crafted.late_records)
    assert wanted["late_event"] == late == 1 and len(wanted) > 3
    wait_until(
        lambda: (
            {k: int(v) for k, v in run.by(figures.DEAD_LETTERS_BY_REASON, "reason").items()}
            == wanted
        ),
        90,
        f"dead letters by reason {wanted} in Prometheus",
        every_s=2,
    )
    assert run.one(figures.LATE_EVENTS) == late


def test_re_deliveries_counted_once(run: MetricsRun) -> None:
    ids = Counter(
        r.value["transaction_id"]
        for r in run.crafted.records
        if isinstance(r.value, dict) and "transaction_id" in r.value
    )
    redelivered = sum(n - 1 for n in ids.values())
    assert redelivered == 2
    wait_until(
        lambda: run.one(figures.REDELIVERIES) == redelivered,
        90,
        f"{redelivered} re-deliveries in Prometheus",
        every_s=2,
    )


def test_rule_versions_applied(run: MetricsRun) -> None:
    # no `fraudctl rules set` in this run: every rule runs on its config, version 0
    versions = wait_until(
        lambda: (lambda v: v if set(v) == set(rule_names()) else None)(
            run.by(figures.RULE_VERSIONS, "rule")
        ),
        60,
        "every rule's version in Prometheus",
        every_s=2,
    )
    assert versions == dict.fromkeys(rule_names(), 0.0)


def test_checkpoints_busy_time_and_input_lag(run: MetricsRun) -> None:
    # checkpoints every 2 s in live-test runs
    duration = wait_until(
        lambda: run.one(figures.CHECKPOINT_DURATION_MS), 60, "a checkpoint duration", every_s=2
    )
    assert 0 < duration < 60_000
    busy = wait_until(lambda: run.by(figures.BUSY, "task_name"), 60, "busy time", every_s=2)
    assert all(0 <= v <= 1 for v in busy.values())
    assert any("high_value_alerts_kafka" in task for task in busy)
    assert run.one(figures.JOB_INPUT_LAG) == 0  # it read all of its input
    assert run.one(figures.RESTARTS) == 0


def test_sink_and_notify_are_scraped(run: MetricsRun) -> None:
    ids = {a["alert_id"] for a in run.alerts}
    critical = {a["alert_id"] for a in run.alerts if a["severity"] == "CRITICAL"}
    assert critical
    topic = run.job.settings.kafka.topics.fraud_alerts
    m = run.settings.mongo

    def sink() -> dict[str, float] | None:
        written = {
            s.labels["collection"]: s.value for s in run.prometheus.query(figures.SINK_WRITTEN)
        }
        lag = {s.labels["topic"]: s.value for s in run.prometheus.query(figures.SINK_LAG)}
        return (
            written
            if written.get(m.alerts_collection) == len(ids) and lag.get(topic) == 0
            else None
        )

    wait_until(sink, 90, f"the sink's {len(ids)} alerts written and no lag", every_s=2)

    def notify() -> bool:
        sent = {
            (s.labels["destination"], s.labels["outcome"]): s.value
            for s in run.prometheus.query(figures.NOTIFICATIONS)
        }
        lag = {s.labels["topic"]: s.value for s in run.prometheus.query(figures.NOTIFY_LAG)}
        return sent.get(("oncall", "sent")) == len(critical) and lag.get(topic) == 0

    wait_until(notify, 90, f"{len(critical)} notifications sent and no lag", every_s=2)
    assert len(_Hook.posts) == len(critical)
    up = {s.labels["job"]: s.value for s in run.prometheus.query(figures.TARGETS_UP)}
    assert up["fraudctl_sink"] == 1 and up["fraudctl_notify"] == 1
    assert up["flink"] == 2  # the JobManager and the TaskManager, on the reporter's range


def test_every_dashboard_query_reads_metrics_prometheus_has(run: MetricsRun) -> None:
    # the figures above are in Prometheus by now (the tests before waited for them); a name
    # typed wrong in the dashboard would plot nothing, silently
    wait_until(
        lambda: (
            run.prometheus.query(figures.NOTIFICATIONS) and run.prometheus.query(figures.SINK_LAG)
        ),
        90,
        "the sink's and the notifier's metrics",
        every_s=2,
    )
    have = set(run.prometheus.metric_names())
    for title, expr in dashboard_expressions():
        names = metric_names(expr)
        assert names, f"{title}: no metric name found in {expr}"
        assert names <= have, f"{title}: {sorted(names - have)} not in Prometheus"
        # a rate needs two scrapes of a series: one that appeared moments ago has one
        wait_until(
            lambda expr=expr: run.prometheus.query(instant(expr)),
            60,
            f"{title}: data for {expr}",
            every_s=2,
        )
    for figure in figures.FIGURES:
        assert metric_names(figure.query) <= have, figure.title


def test_fraudctl_top_shows_the_figures(run: MetricsRun) -> None:
    url = run.prometheus.url
    proc = subprocess.run(
        [sys.executable, "-m", "fraudctl.app", "top", "--json", "--prometheus", url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    snap = {f["title"]: f["rows"] for f in json.loads(proc.stdout)["figures"]}
    alerts = {
        r["rule"]: r["value"]
        for r in snap["alerts by rule (since job start)"]
        if r["job_name"] == run.job_label
    }
    assert alerts["high_value"] == 3
    assert {r["job_name"]: r["value"] for r in snap["late events"]}[run.job_label] == 1
    once = subprocess.run(
        [sys.executable, "-m", "fraudctl.app", "top", "--once", "--prometheus", url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert once.returncode == 0, once.stderr
    assert "alerts by rule" in once.stdout and "high_value" in once.stdout
