"""`fraudctl top`'s figures, its client of Prometheus and the dashboard, without services."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from config import load_settings
from config.stack import PROJECT_ROOT
from fraudctl.app import app
from monitoring import figures
from monitoring.cli import short_task, snapshot
from monitoring.prometheus import Sample
from stack.layout import Layout
from stack.services import Prometheus as PrometheusService
from tests.monitoring.promql import DASHBOARD, dashboard_expressions, instant, metric_names

CONTRACT = (PROJECT_ROOT / "docs" / "contract.md").read_text()


def test_metric_names_of_an_expression():
    expr = (
        "sum by (job_name, rule) (label_replace(increase(flink_x_numRecordsIn{operator_name=~"
        '"(.+)_alerts_kafka_[0-9]+_:_Writer"}[5m]), "rule", "$1", "operator_name", "(.+)")) '
        "- on(job_name) group_left(rule) max(up offset 1m) * 60 / 1e3 + fraud_y_total"
    )
    assert metric_names(expr) == {"flink_x_numRecordsIn", "up", "fraud_y_total"}
    assert metric_names('rate(m[$__rate_interval]) * 60 > bool 0 and n{a="$job_name"}') == {
        "m",
        "n",
    }


def test_a_tasks_chain_reads_without_its_plumbing():
    name = (
        "Deduplicate_7_____Calc_8_____high_value_alerts_kafka_9_:_Writer____"
        "high_value_alerts_kafka_9_:_Committer"
    )
    assert short_task(name) == "Deduplicate_7 > high_value_alerts_kafka_9_:_Writer"
    assert short_task("WindowAggregate_21_____Calc_22_") == "WindowAggregate_21"
    assert short_task("Calc_5_") == "Calc_5"


class _Fake:
    """Prometheus answering each query with the samples given for it."""

    def __init__(self, answers: dict[str, list[Sample]]) -> None:
        self.answers = answers

    def query(self, expr: str) -> list[Sample]:
        return self.answers.get(expr, [])


def test_snapshot_names_rows_by_their_labels_and_keeps_the_busiest_five():
    busy = [Sample({"job_name": "j", "task_name": f"T{i}_____Calc_1_"}, i / 10) for i in range(8)]
    answers = {
        figures.ALERTS_BY_RULE: [
            Sample({"job_name": "j", "rule": "velocity"}, 2.0),
            Sample({"job_name": "j", "rule": "high_value"}, 3.0),
        ],
        figures.BUSY: busy,
    }
    snap = {s["title"]: s for s in snapshot(_Fake(answers))}
    assert snap["alerts by rule (since job start)"]["rows"] == [
        {"job_name": "j", "rule": "high_value", "value": 3.0},
        {"job_name": "j", "rule": "velocity", "value": 2.0},
    ]
    rows = snap["busiest tasks (busy share)"]["rows"]
    assert [r["task_name"] for r in rows] == ["T7", "T6", "T5", "T4", "T3"]
    assert snap["late events"]["rows"] == []
    assert len(snap) == len(figures.FIGURES)


def test_top_says_when_prometheus_is_unreachable():
    result = CliRunner().invoke(app, ["top", "--once", "--prometheus", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "unreachable" in result.output and "http://127.0.0.1:9" in result.output


def test_every_metric_the_figures_and_the_dashboard_read_is_in_the_contract():
    # docs/contract.md is where a team outside the project finds the names
    used = {n for f in figures.FIGURES for n in metric_names(f.query)}
    used |= {n for _, expr in dashboard_expressions() for n in metric_names(expr)}
    listed = set(re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^`]*\})?`", CONTRACT))
    assert used - {"up"} <= listed, sorted(used - listed)


def test_the_dashboard_reads_the_provisioned_datasource_and_every_panel_has_a_query():
    board = json.loads(DASHBOARD.read_text())
    provisioned = yaml.safe_load(
        (PROJECT_ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
    assert all("$" not in instant(e).replace("$1", "") for _, e in dashboard_expressions())
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for wanted in ("alerts per rule", "consumer lag", "dead letters", "checkpoint", "busy"):
        assert wanted in titles


def test_compose_prometheus_scrapes_the_jobs_the_local_stack_does(tmp_path: Path):
    compose = yaml.safe_load((PROJECT_ROOT / "monitoring" / "prometheus.yml").read_text())
    settings = load_settings(stack={"data_dir": str(tmp_path)})
    local = PrometheusService(settings, Layout.from_settings(settings)).scrape_config()
    assert {j["job_name"] for j in compose["scrape_configs"]} == {
        j["job_name"] for j in local["scrape_configs"]
    }


def test_the_live_view_fits_the_figures_on_one_screen():
    from rich.console import Console

    from monitoring.cli import render

    j = {"job_name": "fraud_detection"}
    answers = {
        figures.ALERTS_BY_RULE: [Sample({**j, "rule": r}, 3.0) for r in ("high_value", "velocity")],
        figures.ALERTS_BY_RULE_5M: [Sample({**j, "rule": "high_value"}, 1.0)],
        figures.RULE_VERSIONS: [Sample({**j, "rule": r}, 0.0) for r in ("high_value", "velocity")],
        figures.DEAD_LETTERS_BY_REASON: [Sample({**j, "reason": "late_event"}, 1.0)],
        figures.LATE_EVENTS: [Sample(j, 1.0)],
        figures.REDELIVERIES: [Sample(j, 2.0)],
        figures.CHECKPOINT_DURATION_MS: [Sample(j, 90.0)],
        figures.BUSY: [Sample({**j, "task_name": "Deduplicate_7_____Calc_8_"}, 0.34)],
        figures.SINK_LAG: [Sample({"topic": "fraud_alerts"}, 0.0)],
        figures.NOTIFICATIONS: [Sample({"destination": "oncall", "outcome": "sent"}, 3.0)],
        figures.TARGETS_UP: [Sample({"job": "flink"}, 2.0)],
    }
    console = Console(width=150, record=True)
    console.print(render(snapshot(_Fake(answers)), "http://prometheus:9090"))
    text = console.export_text()
    assert len(text.splitlines()) <= 45, text
    for wanted in ("high_value", "late_event", "90 ms", "34%", "oncall sent", "flink 2"):
        assert wanted in text, wanted


def test_every_query_parses_as_promql(tmp_path: Path):
    """promtool (Debian's prometheus package) parses each figure and dashboard query as a
    recording rule: a syntax error is found without a server."""
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool missing: `fraudctl stack install` installs prometheus")
    exprs = [f.query for f in figures.FIGURES] + [instant(e) for _, e in dashboard_expressions()]
    rules = {
        "groups": [
            {
                "name": "check",
                "rules": [{"record": f"check:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
