"""docker-compose.yml is valid for Debian's docker-compose v1.29 (no engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _config(env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose missing: `fraudctl stack install --test-clients` installs it"
    return subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_validates_and_wires_the_product():
    proc = _config({"FRAUD_CARD_TOKEN_SECRET": "test-only"})
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert {"kafka", "mongodb", "jobmanager", "taskmanager", "sink"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["mongodb"]["image"].startswith("mongo:8")
    assert services["jobmanager"]["build"]["context"] == str(ROOT)
    env = services["taskmanager"]["environment"]
    assert env["FRAUD_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_only_the_taskmanager_gets_the_card_token_key():
    """The UDF workers tokenise card numbers; the JobManager (which submits the job) and the
    sink never need the key, so it is not in their environment."""
    proc = _config({"FRAUD_CARD_TOKEN_SECRET": "test-only-key"})
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    holders = {
        name
        for name, service in services.items()
        if "test-only-key" in yaml.safe_dump(service.get("environment", {}))
    }
    assert holders == {"taskmanager"}


def test_compose_refuses_to_run_without_the_card_token_secret():
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_CARD_TOKEN_SECRET"}
    proc = subprocess.run(
        [
            shutil.which("docker-compose") or "docker-compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "FRAUD_CARD_TOKEN_SECRET" in proc.stderr


def test_the_image_gives_flinks_log4j_files_the_projects_lines():
    # the TaskManager container has the card-token key in its environment, which Beam would log
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copy_stack = lines.index("COPY stack /opt/fraud/stack")
    append = next(i for i, line in enumerate(lines) if "flink_log4j_extra.properties" in line)
    assert copy_stack < append
    assert "/opt/flink/conf/log4j*.properties" in "\n".join(lines[append - 1 : append + 2])


def test_compose_runs_prometheus_and_grafana_with_the_provisioned_dashboard():
    proc = _config({"FRAUD_CARD_TOKEN_SECRET": "test-only"})
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == str(ROOT / "monitoring/grafana/provisioning")
    assert mounts["/var/lib/grafana/dashboards"] == str(ROOT / "monitoring/grafana/dashboards")
    prom_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert prom_mounts["/etc/prometheus/prometheus.yml"] == str(ROOT / "monitoring/prometheus.yml")
    # every Flink container serves the reporter's port that monitoring/prometheus.yml scrapes
    for flink in ("jobmanager", "taskmanager"):
        props = services[flink]["environment"]["FLINK_PROPERTIES"]
        assert "PrometheusReporterFactory" in props and "metrics.reporter.prom.port: 9249" in props
    assert str(services["sink"]["environment"]["FRAUD_MONGO__METRICS_PORT"]) == "9464"
    assert str(services["notify"]["environment"]["FRAUD_NOTIFY__METRICS_PORT"]) == "9465"
    scrape = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = str(scrape["scrape_configs"])
    for target in ("jobmanager:9249", "'taskmanager'", "sink:9464", "notify:9465"):
        assert target in targets


def test_the_image_holds_every_package_the_console_script_imports():
    # fraudctl/app.py registers every package's verbs: a package missing from the image
    # breaks every `fraudctl` command in it (the sink's too)
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in (
        "config",
        "fraudctl",
        "jobs",
        "udfs",
        "mongo_sink",
        "producer",
        "stack",
        "notify",
        "monitoring",
        "sql_templates",
    ):
        assert f"COPY {package} /opt/fraud/{package}" in dockerfile
