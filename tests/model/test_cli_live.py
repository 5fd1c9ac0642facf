"""`fraudctl model promote` and `rollback` on the live stack: a promotion is a risk_score
version in fraud_rules (and MongoDB rule_changes), a rollback the version before it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from config import Settings
from fraudctl.app import app
from jobs.rule_admin.versions import change_log, current_history

pytestmark = pytest.mark.integration

runner = CliRunner()


def test_promote_then_rollback_publish_rule_versions(private_rules: Settings, store) -> None:
    store.write((store.path(1) / "model.txt").read_text(), store.meta(1))  # version 2
    env = {
        "FRAUD_SCORING__MODELS_PATH": str(store.root),
        "FRAUD_KAFKA__TOPICS__RULES": private_rules.kafka.topics.rules,
        "FRAUD_MONGO__DATABASE": private_rules.mongo.database,
    }
    # the config's is the default model, 1: promote 0 (the weighted sum), 2, then roll back
    for args in (["promote", "0"], ["promote", "2"], ["rollback"]):
        result = runner.invoke(app, ["model", *args, "--json"], env=env)
        assert result.exit_code == 0, result.output
    versions = current_history(private_rules).versions("risk_score")
    assert [v.params["model_version"] for v in versions] == [1, 0, 2, 0]
    assert [c["new"]["model_version"] for c in change_log(private_rules, "risk_score")] == [0, 2, 0]
    listed = runner.invoke(app, ["model", "list", "--json"], env=env)
    assert json.loads(listed.output)["promoted"] == 0
    refused = runner.invoke(app, ["model", "promote", "9"], env=env)
    assert refused.exit_code == 1
    assert len(current_history(private_rules).versions("risk_score")) == 4
