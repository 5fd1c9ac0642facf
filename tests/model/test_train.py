"""Training (jobs/model/train.py): hold-out by time, threshold, metrics, digest, labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobs.model.train import (
    TrainingError,
    average_precision,
    choose_threshold,
    labels_from_truth,
    precision_recall,
    train,
)
from tests.model.synthetic import frame
from udfs.behaviour_features import MODEL_FEATURES, feature_matrix


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, set[str]]:
    return frame(rows=3000, fraud_share=0.05, seed=1)


@pytest.fixture(scope="module")
def model(data):
    return train(*data, seed=7)


def test_average_precision_of_a_hand_computed_ranking():
    # ranks 1, 3, 5 are fraud: (1/1 + 2/3 + 3/5) / 3
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2])
    assert average_precision(y, p) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_average_precision_takes_tied_scores_as_one_step():
    # at 0.5: precision 1/2, recall 1/2; at 0.1: precision 2/3, recall 1
    assert average_precision(np.array([1, 0, 1]), np.array([0.5, 0.5, 0.1])) == pytest.approx(
        0.5 * 0.5 + 0.5 * 2 / 3
    )


def test_average_precision_is_one_for_a_perfect_ranking_and_none_without_fraud():
    assert average_precision(np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.9, 0.2])) == 1.0
    assert average_precision(np.array([0, 0]), np.array([0.1, 0.8])) is None


def test_the_threshold_is_the_lowest_score_with_precision_at_least_0_9():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert choose_threshold(y, p) == (0.8, "precision_0.9")
    assert precision_recall(y, p, 0.8) == (1.0, pytest.approx(2 / 3))


def test_without_such_a_score_the_threshold_is_the_best_f1():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6])  # F1 0.5 at 0.8, 2/3 at 0.6
    assert choose_threshold(y, p) == (0.6, "max_f1")


def test_the_model_is_judged_on_the_latest_fifth_by_event_time(data, model):
    df, positives = data
    ordered = df.sort_values("event_time")
    holdout = ordered.tail(600)
    m = model.metrics
    assert m["holdout_rows"] == 600
    assert pd.Timestamp(m["holdout_from"]) == holdout["event_time"].iloc[0]
    assert m["holdout_positives"] == holdout["transaction_id"].isin(positives).sum()
    # the figures are those of the latest rows, recomputed here
    y = holdout["transaction_id"].isin(positives).to_numpy(int)
    p = model.booster.predict(feature_matrix(holdout))
    assert (m["precision"], m["recall"]) == precision_recall(y, p, m["threshold"])
    assert m["pr_auc"] == pytest.approx(average_precision(y, p))


def test_the_metrics_are_sane(data, model):
    _, positives = data
    m, meta = model.metrics, model.meta
    assert (meta["rows"], meta["positives"]) == (3000, len(positives))
    assert m["threshold_rule"] == "precision_0.9"
    assert m["precision"] >= 0.9
    assert 0.5 < m["recall"] <= 1
    assert m["holdout_positives"] / m["holdout_rows"] < m["pr_auc"] <= 1  # beats chance
    assert meta["features"] == list(MODEL_FEATURES)
    assert meta["trained_from"] == "2026-12-01T00:00:00+00:00"
    assert json.loads(json.dumps(meta)) == meta  # meta.json holds it as it is


def test_the_same_data_in_any_order_gives_the_same_digest_and_model(data, model):
    df, positives = data
    shuffled = df.sample(frac=1.0, random_state=5)
    again = train(shuffled, positives, seed=7)
    assert again.meta["data_digest"] == model.meta["data_digest"]
    assert again.model_text() == model.model_text()
    assert again.metrics == model.metrics


def test_one_label_more_changes_the_digest(data, model):
    df, positives = data
    other = train(df, positives | {"t00001"}, seed=7)
    assert other.meta["data_digest"] != model.meta["data_digest"]


def test_labels_may_be_a_boolean_series_indexed_like_the_frame(data, model):
    df, positives = data
    series = df["transaction_id"].isin(positives)
    assert train(df, series, seed=7).meta["data_digest"] == model.meta["data_digest"]


def test_the_model_file_is_small_enough_to_commit(model):
    assert len(model.model_text().encode()) < 1_000_000
    assert model.meta["params"]["deterministic"] is True
    assert model.meta["params"]["num_threads"] == 1
    # fraud is rare but not reweighted (train.py says why)
    assert "scale_pos_weight" not in model.meta["params"]


def test_a_hold_out_without_fraud_is_refused(data):
    df, _ = data
    early = set(df.sort_values("event_time")["transaction_id"].head(100))
    with pytest.raises(TrainingError, match="hold-out"):
        train(df, early)


def test_data_without_fraud_is_refused(data):
    with pytest.raises(TrainingError, match="both classes"):
        train(data[0], set())


def test_the_positives_are_the_risk_score_scenarios_of_the_truth_file(tmp_path):
    lines = [
        {"kind": "scenario", "scenario_id": "s1", "scenario_type": "risky_purchase",
         "expected_rule": "RISK_SCORE", "transaction_ids": ["a", "b"]},
        {"kind": "scenario", "scenario_id": "s2", "scenario_type": "velocity_burst",
         "expected_rule": "VELOCITY", "transaction_ids": ["c"]},
        {"kind": "lookalike", "scenario_type": "big_spender", "expected_rule": "RISK_SCORE",
         "transaction_ids": ["d"]},
        {"kind": "invalid", "invalid_kind": "not_json", "transaction_id": "e"},
    ]  # fmt: skip
    path = tmp_path / "truth.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert labels_from_truth(path) == {"a", "b"}
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="line 1"):
        labels_from_truth(path)
