"""Every librdkafka client the product makes takes its settings from `config.kafka.client_config`,
so none prints librdkafka's notices (`make demo` once showed `%6|…|BGQUEUE|… Purging 1 unserved
events from background queue` from a consumer it closed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from config.kafka import CLIENT_LOG_LEVEL, client_config
from config.stack import PROJECT_ROOT
from tests.test_layers import MODULES

CLIENTS = {"Consumer", "Producer", "AdminClient"}


def _name(node: ast.expr) -> str | None:
    """The name a call calls (`Consumer(...)`, `admin.AdminClient(...)`), else None."""
    if isinstance(node, ast.Call):
        return getattr(node.func, "id", getattr(node.func, "attr", None))
    return None


def _client_calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if _name(node) in CLIENTS]


CALLS = [(p, call) for p in MODULES for call in _client_calls(p)]


def test_the_product_makes_kafka_clients():
    # the walk below finds them (the demo's peek, the sink, notify, rules, topics, producer)
    assert len({p for p, _ in CALLS}) >= 8


@pytest.mark.parametrize(
    ("path", "call"),
    CALLS,
    ids=[f"{p.relative_to(PROJECT_ROOT)}:{c.lineno}" for p, c in CALLS],
)
def test_each_client_is_configured_by_client_config(path, call):
    first = call.args[0] if call.args else None
    built_by = _name(first) if first is not None else None
    # a module's own helper that returns client_config(...) counts too (consumer_config)
    helpers = {
        node.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
        and any(
            _name(r.value) == "client_config"
            for r in ast.walk(node)
            if isinstance(r, ast.Return) and r.value
        )
    }
    assert built_by == "client_config" or built_by in helpers, (
        f"{path.relative_to(PROJECT_ROOT)}:{call.lineno}: a Kafka client not from client_config"
    )


def test_client_config_logs_errors_only_unless_told_otherwise():
    config = client_config("h:1", {"group.id": "g"})
    assert config == {"bootstrap.servers": "h:1", "log_level": CLIENT_LOG_LEVEL, "group.id": "g"}
    assert CLIENT_LOG_LEVEL <= 3  # syslog levels: 3 is error, 6 (librdkafka's default) is info
    assert client_config("h:1", {"log_level": 0})["log_level"] == 0
