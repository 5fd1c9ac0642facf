"""A metrics endpoint announces itself to the local stack's Prometheus (file-based service
discovery) and withdraws when it closes."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from config import load_settings
from fraudctl.metrics import Endpoint
from tests.isolated_stack import free_ports


def test_a_served_endpoint_is_announced_and_withdrawn(tmp_path: Path):
    settings = load_settings(stack={"data_dir": str(tmp_path)})
    (port,) = free_ports(1)
    endpoint = Endpoint()
    endpoint.serve(port, settings, "sink")
    try:
        path = settings.stack.metrics_targets_dir() / f"sink-{port}.json"
        assert json.loads(path.read_text()) == [{"targets": [f"127.0.0.1:{port}"]}]
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).ok
    finally:
        endpoint.close()
    assert not path.exists()


def test_no_announcement_when_the_stacks_metrics_are_off(tmp_path: Path):
    settings = load_settings(stack={"data_dir": str(tmp_path), "metrics": False})
    (port,) = free_ports(1)
    endpoint = Endpoint()
    endpoint.serve(port, settings, "notify")
    endpoint.close()
    assert not settings.stack.metrics_targets_dir().exists()
