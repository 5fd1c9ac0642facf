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
