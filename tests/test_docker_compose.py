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
