"""`fraudctl model ...` on a temporary model store, with no service: Kafka's part (reading and
publishing fraud_rules) is a stand-in here; test_cli_live.py publishes for real."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

import jobs.model.features
import jobs.rule_admin.versions
from config.rule_changes import initial_parameters
from config.rules import Rules
from fraudctl.app import app
from jobs.model import cli
from tests.model.synthetic import frame
from udfs.rule_parameters import ParameterHistory, RuleVersion

runner = CliRunner()


@pytest.fixture
def env(store) -> dict[str, str]:
    return {"FRAUD_SCORING__MODELS_PATH": str(store.root), "COLUMNS": "200"}


@pytest.fixture
def published(monkeypatch) -> list[dict[str, Any]]:
    """Changes `promote` publishes (nothing reaches Kafka)."""
    calls: list[dict[str, Any]] = []
    old_params = initial_parameters(Rules())["risk_score"]

    def publish_change(settings, rule, changes, **_):
        calls.append({"rule": rule, **changes})
        old = RuleVersion(rule, 0, 0, old_params)
        new = RuleVersion(rule, 1, 1000, {**old_params, **changes}, "ana", "", "2026-12-07T10:00Z")
        return old, new

    monkeypatch.setattr(jobs.rule_admin.versions, "publish_change", publish_change)
    return calls


def _history(*model_versions: int) -> ParameterHistory:
    """risk_score's versions in fraud_rules: one per model version given, in order."""
    history = ParameterHistory(initial_parameters(Rules()))
    for n, mv in enumerate(model_versions, 1):
        history.add(RuleVersion("risk_score", n, n * 1000, {"model_version": mv}))
    return history


def test_list_shows_the_heuristic_and_each_version_and_which_is_in_force(env, monkeypatch):
    monkeypatch.setattr(cli, "_promoted_version", lambda s: 1)
    result = runner.invoke(app, ["model", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["promoted"] == 1
    assert [(m["version"], m["promoted"]) for m in doc["models"]] == [(0, False), (1, True)]
    assert doc["models"][1]["rows"] == 1500
    table = runner.invoke(app, ["model", "list"], env=env)
    assert table.exit_code == 0, table.output
    assert "heuristic" in table.output and "in force" in table.output


def test_list_says_when_what_is_in_force_is_unknown(env, monkeypatch):
    monkeypatch.setattr(cli, "_promoted_version", lambda s: None)
    result = runner.invoke(app, ["model", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert "unreadable" in result.output
    doc = json.loads(runner.invoke(app, ["model", "list", "--json"], env=env).output)
    assert doc["promoted"] is None
    assert not any(m["promoted"] for m in doc["models"])


def test_show_prints_the_meta(env, store):
    result = runner.invoke(app, ["model", "show", "1", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == store.meta(1)
    table = runner.invoke(app, ["model", "show", "1"], env=env)
    assert store.meta(1)["data_digest"] in table.output
    assert "metrics.pr_auc" in table.output


def test_show_of_a_missing_version_is_an_error(env):
    result = runner.invoke(app, ["model", "show", "4"], env=env)
    assert result.exit_code == 1
    assert "model 4: no such version" in result.output


@pytest.mark.parametrize(
    ("version", "damage", "message"),
    [
        ("7", None, "model 7: no such version"),
        ("1", "corrupt", "does not load"),
        ("1", "features", "MODEL_FEATURES"),
    ],
)
def test_promote_refuses_a_missing_or_bad_model_and_publishes_nothing(
    env, store, published, version, damage, message
):
    if damage == "corrupt":
        (store.path(1) / "model.txt").write_text("garbage")
    elif damage == "features":
        meta = store.meta(1)
        (store.path(1) / "meta.json").write_text(json.dumps({**meta, "features": ["amount"]}))
    result = runner.invoke(app, ["model", "promote", version], env=env)
    assert result.exit_code == 1
    assert message in result.output and "nothing published" in result.output
    assert published == []


def test_promote_publishes_the_rule_change(env, store, published):
    store.write((store.path(1) / "model.txt").read_text(), store.meta(1))  # version 2
    result = runner.invoke(app, ["model", "promote", "2"], env=env)
    assert result.exit_code == 0, result.output
    assert published == [{"rule": "risk_score", "model_version": 2}]
    # the config's is the default model, version 1
    assert "model_version: 1 -> 2" in result.output


def test_promote_with_threshold_sets_the_models_own_threshold_too(env, store, published):
    result = runner.invoke(app, ["model", "promote", "1", "--with-threshold"], env=env)
    assert result.exit_code == 0, result.output
    threshold = round(store.meta(1)["metrics"]["threshold"], 4)
    assert published == [{"rule": "risk_score", "model_version": 1, "threshold": threshold}]


def test_version_0_needs_no_model_file(env, published):
    result = runner.invoke(app, ["model", "promote", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert published == [{"rule": "risk_score", "model_version": 0}]


@pytest.mark.parametrize(
    ("model_versions", "previous"),
    [
        ((), None),  # only the config's version (the default model, 1)
        ((2,), 1),
        ((2, 3), 2),
        ((2, 3, 3), 2),  # a threshold change between: same model
        ((2, 3, 2), 3),  # after a rollback, rolling back again returns
    ],
)
def test_the_previous_model_version_is_the_last_different_one(model_versions, previous):
    assert cli.previous_model_version(_history(*model_versions).versions("risk_score")) == previous


def test_rollback_promotes_the_version_in_force_before(env, store, published, monkeypatch):
    store.write((store.path(1) / "model.txt").read_text(), store.meta(1))  # version 2
    monkeypatch.setattr(jobs.rule_admin.versions, "current_history", lambda s: _history(1, 2))
    result = runner.invoke(app, ["model", "rollback"], env=env)
    assert result.exit_code == 0, result.output
    assert published == [{"rule": "risk_score", "model_version": 1}]


def test_rollback_with_nothing_promoted_before_is_a_clear_error(env, published, monkeypatch):
    monkeypatch.setattr(jobs.rule_admin.versions, "current_history", lambda s: _history())
    result = runner.invoke(app, ["model", "rollback"], env=env)
    assert result.exit_code == 1
    assert "nothing to roll back to" in result.output
    assert published == []


def test_train_on_generated_traffic_stores_the_next_version(env, store, monkeypatch):
    df, positives = frame(rows=1500, fraud_share=0.08, seed=4)
    asked = []

    def generated_features(settings, seed, events):
        asked.append((seed, events))
        return df, positives

    monkeypatch.setattr(jobs.model.features, "generated_features", generated_features)
    result = runner.invoke(
        app, ["model", "train", "--generated", "--seed", "3", "--events", "1500"], env=env
    )
    assert result.exit_code == 0, result.output
    assert asked == [(3, 1500)]
    assert store.versions() == [1, 2]
    assert "model 2" in result.output and "fraudctl model promote 2" in result.output
    assert store.meta(2)["source"] == "generated: seed 3, 1500 events, 10000 cards, 50 per second"
    assert store.validate(2)["rows"] == 1500


def test_train_on_the_lake_reads_the_range_and_the_labels(env, store, monkeypatch, tmp_path):
    df, positives = frame(rows=1500, fraud_share=0.08, seed=4)
    ranges = []

    def lake_features(settings, start, end, warmup):
        ranges.append((start.isoformat(), end.isoformat()))
        return df

    monkeypatch.setattr(jobs.model.features, "lake_features", lake_features)
    truth = tmp_path / "truth.jsonl"
    truth.write_text(
        json.dumps({"kind": "scenario", "expected_rule": "RISK_SCORE",
                    "transaction_ids": sorted(positives)}) + "\n"
    )  # fmt: skip
    args = ["model", "train", "--from", "2026-12-01T00:00", "--to", "2026-12-03T00:00"]
    result = runner.invoke(app, [*args, "--labels", str(truth), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert ranges == [("2026-12-01T00:00:00+00:00", "2026-12-03T00:00:00+00:00")]
    meta = json.loads(result.output)
    assert meta["version"] == 2 and meta["positives"] == len(positives)
    assert meta["trained_from"] == "2026-12-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--from", "2026-12-01T00:00", "--to", "2026-12-02T00:00"],
        ["--generated", "--from", "2026-12-01T00:00"],
    ],
)
def test_train_needs_a_range_and_labels_or_generated(env, args):
    result = runner.invoke(app, ["model", "train", *args], env=env)
    assert result.exit_code == 2


def test_train_says_when_the_lake_has_nothing_to_train_on(env, monkeypatch, tmp_path):
    from jobs.history.lake import LakeError

    def empty(*_, **__):
        raise LakeError("the lake at /nowhere holds no transactions yet")

    monkeypatch.setattr(jobs.model.features, "lake_features", empty)
    truth = tmp_path / "truth.jsonl"
    truth.write_text("")
    args = ["--from", "2026-12-01T00:00", "--to", "2026-12-02T00:00", "--labels", str(truth)]
    result = runner.invoke(app, ["model", "train", *args], env=env)
    assert result.exit_code == 1
    assert "holds no transactions yet" in result.output


def test_train_refuses_a_warmup_that_is_not_a_duration(env):
    args = ["--from", "2026-12-01T00:00", "--to", "2026-12-02T00:00", "--labels", __file__]
    result = runner.invoke(app, ["model", "train", *args, "--warmup", "soon"], env=env)
    assert result.exit_code == 2
    assert "--warmup" in result.output
