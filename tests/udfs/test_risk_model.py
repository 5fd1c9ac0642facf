"""The risk model scorer (udfs/risk_model.py): version 0 is the heuristic, a trained version is
its LightGBM model, reasons only for alerts, and a missing or broken model never fails a batch."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest

from config.stack import PROJECT_ROOT
from tests.model.synthetic import frame as synthetic_frame
from udfs import risk_model
from udfs.behaviour_features import BEHAVIOUR_FIELDS, MODEL_FEATURES, SAMPLE_ROW, feature_matrix
from udfs.risk_model import ModelCache, _udf_batch, resolve_models_path, score_batch, top_reasons
from udfs.risk_score import RiskParams, feature_columns, risk_scores

PARAMS_JSON = json.dumps(
    {
        "weights": RiskParams().weights,
        "amount_scale": 1000.0,
        "night_hours": [0, 5],
        "risky_categories": sorted(RiskParams().risky_categories),
        "online_channels": sorted(RiskParams().online_channels),
        "home_currency": "USD",
    }
)


def _train_tiny(feature_names=MODEL_FEATURES, trees: int = 15) -> lightgbm.Booster:
    df, positives = synthetic_frame(rows=600, fraud_share=0.1, seed=3)
    x = feature_matrix(df)[:, : len(feature_names)]
    y = df["transaction_id"].isin(positives).to_numpy(int)
    params = {
        "objective": "binary", "num_leaves": 7, "min_data_in_leaf": 5, "verbosity": -1,
        "seed": 1, "deterministic": True, "num_threads": 1, "force_row_wise": True,
    }  # fmt: skip
    return lightgbm.train(
        params, lightgbm.Dataset(x, y, feature_name=list(feature_names)), num_boost_round=trees
    )


@pytest.fixture(scope="module")
def tiny() -> lightgbm.Booster:
    return _train_tiny()


@pytest.fixture
def store(tmp_path: Path, tiny) -> Path:
    (tmp_path / "1").mkdir()
    tiny.save_model(str(tmp_path / "1" / "model.txt"))
    return tmp_path


@pytest.fixture
def rows() -> pd.DataFrame:
    """The synthetic frame's last 200 rows: fraud-like and plain ones."""
    df, _ = synthetic_frame(rows=600, fraud_share=0.1, seed=3)
    return df.tail(200).reset_index(drop=True)


def test_version_0_is_the_heuristic_score_of_risk_score(rows, tmp_path):
    result = score_batch(rows, 0, 0.8, PARAMS_JSON, tmp_path, cache=ModelCache())
    expected = risk_scores(
        rows["amount"], rows["channel"], rows["merchant_category"], rows["currency"],
        rows["hour"], RiskParams(),
    )  # fmt: skip
    np.testing.assert_array_equal(result.score, expected)
    assert set(result.model_version.tolist()) == {0}


def test_version_0_reasons_are_the_top_three_weighted_features_of_alerts_only():
    rows = pd.DataFrame(
        [
            {**SAMPLE_ROW, "amount": 1000.0, "channel": "online", "merchant_category": "crypto",
             "hour": 2},  # 0.35 + 0.2 + 0.15 + 0.1 + round 0.1 = 0.9
            {**SAMPLE_ROW, "amount": 400.0, "channel": "online", "merchant_category": "crypto",
             "hour": 2},  # 0.69: below 0.8
        ]
    )  # fmt: skip
    result = score_batch(rows, [0, 0], [0.8, 0.8], PARAMS_JSON, "/nonexistent", ModelCache())
    assert result.score.tolist() == pytest.approx([0.9, 0.69])
    assert result.reasons == [["amount", "risky_category", "night"], []]


def test_a_trained_version_scores_as_its_booster_predicts(rows, store, tiny):
    result = score_batch(rows, 1, 2.0, PARAMS_JSON, store, cache=ModelCache())
    np.testing.assert_allclose(result.score, tiny.predict(feature_matrix(rows)), rtol=0, atol=0)
    assert set(result.model_version.tolist()) == {1}
    assert all(r == [] for r in result.reasons)  # nothing reaches a threshold of 2


def test_reasons_are_the_top_three_positive_contributions_at_or_above_the_threshold(
    rows, store, tiny
):
    scores = tiny.predict(feature_matrix(rows))
    threshold = float(np.sort(scores)[-12])  # about a dozen alerts
    result = score_batch(rows, 1, threshold, PARAMS_JSON, store, cache=ModelCache())
    alerts = scores >= threshold
    assert 0 < alerts.sum() < len(rows)
    contrib = tiny.predict(feature_matrix(rows), pred_contrib=True)[:, :-1]
    for i, reasons in enumerate(result.reasons):
        if not alerts[i]:
            assert reasons == []
            continue
        positive = [(c, MODEL_FEATURES[j]) for j, c in enumerate(contrib[i]) if c > 0]
        expected = [name for _, name in sorted(positive, key=lambda p: -p[0])[:3]]
        assert reasons == expected
        assert 1 <= len(reasons) <= 3


def test_top_reasons_keep_positive_contributions_only_largest_first():
    contrib = np.array([[0.1, -2.0, 0.5, 0.0, 0.3, 0.2], [-1.0, -1.0, 0.0, 0.0, 0.0, 0.4]])
    assert top_reasons(contrib, list("abcdef")) == [["c", "e", "f"], ["f"]]


def test_a_missing_model_is_scored_by_version_0_and_logged_once(rows, tmp_path, caplog):
    cache = ModelCache()
    heuristic = score_batch(rows, 0, 0.8, PARAMS_JSON, tmp_path, cache)
    with caplog.at_level(logging.ERROR, logger="udfs.risk_model"):
        for _ in range(3):
            result = score_batch(rows, 7, 0.8, PARAMS_JSON, tmp_path, cache)
    np.testing.assert_array_equal(result.score, heuristic.score)
    assert result.reasons == heuristic.reasons
    assert set(result.model_version.tolist()) == {0}
    logged = [r for r in caplog.records if "model 7" in r.getMessage()]
    assert len(logged) == 1
    assert "does not exist" in logged[0].getMessage()


@pytest.mark.parametrize("broken", ["corrupt", "wrong_features", "empty"])
def test_a_broken_model_never_raises(rows, tmp_path, broken):
    path = tmp_path / "2" / "model.txt"
    path.parent.mkdir()
    if broken == "corrupt":
        path.write_text("tree\nversion=v4\nthis is not a model\n")
    elif broken == "empty":
        path.write_text("")
    else:
        _train_tiny(feature_names=MODEL_FEATURES[:5], trees=2).save_model(str(path))
    result = score_batch(rows, 2, 0.5, PARAMS_JSON, tmp_path, ModelCache())
    assert set(result.model_version.tolist()) == {0}
    assert not np.isnan(result.score).any()


def test_one_batch_may_hold_several_versions(rows, store, tiny):
    versions = [0, 1, 9] * (len(rows) // 3) + [1] * (len(rows) % 3)
    result = score_batch(rows, versions, 0.5, PARAMS_JSON, store, ModelCache())
    model_rows = np.array(versions) == 1
    np.testing.assert_array_equal(
        result.score[model_rows], tiny.predict(feature_matrix(rows))[model_rows]
    )
    assert result.model_version.tolist() == [1 if v == 1 else 0 for v in versions]


def test_a_new_version_is_picked_up_without_loading_the_old_one_again(rows, store, monkeypatch):
    loads: list[int] = []
    real = risk_model.load_model

    def counting(path, version):
        loads.append(int(version))
        return real(path, version)

    monkeypatch.setattr(risk_model, "load_model", counting)
    cache = ModelCache()
    score_batch(rows, 1, 0.5, PARAMS_JSON, store, cache)
    shutil.copytree(store / "1", store / "2")  # promoted meanwhile
    score_batch(rows, 2, 0.5, PARAMS_JSON, store, cache)
    score_batch(rows, [1, 2] * (len(rows) // 2), 0.5, PARAMS_JSON, store, cache)
    assert loads == [1, 2]


def test_a_model_that_arrives_late_is_loaded_on_a_later_try(rows, tmp_path, tiny):
    cache = ModelCache(retry_s=0)
    assert set(score_batch(rows, 3, 0.5, PARAMS_JSON, tmp_path, cache).model_version) == {0}
    (tmp_path / "3").mkdir()
    tiny.save_model(str(tmp_path / "3" / "model.txt"))
    assert set(score_batch(rows, 3, 0.5, PARAMS_JSON, tmp_path, cache).model_version) == {3}


def test_the_udf_body_returns_compact_json_per_row(store, tiny):
    rows = pd.DataFrame([SAMPLE_ROW, {**SAMPLE_ROW, "amount": None}])
    behaviour = pd.Series(
        [json.dumps({f: row[f] for f in BEHAVIOUR_FIELDS}) for row in rows.to_dict("records")]
    )
    series = [rows.get(name, pd.Series([0.5, None])) for name in risk_model.ROW_FIELDS]
    out = _udf_batch(
        pd.Series([1, 0]),
        pd.Series([str(store)] * 2),
        pd.Series([0.0, 0.8]),
        pd.Series([PARAMS_JSON] * 2),
        *series,
        behaviour,
    )
    first, second = (json.loads(text) for text in out)
    assert first["model_version"] == 1
    assert first["score"] == pytest.approx(tiny.predict(feature_matrix(rows.head(1)))[0])
    assert 1 <= len(first["reasons"]) <= 3  # threshold 0: every row is an alert
    # version 0 is the row's own weighted sum (`risk_score`): none here
    assert second == {"score": None, "model_version": 0, "reasons": []}
    assert " " not in out[0]


def test_version_0_scores_a_row_with_its_own_weighted_sum(rows):
    given = rows.assign(risk_score=0.91)
    scores = score_batch(given, 0, 0.9, PARAMS_JSON, "/nowhere")
    assert set(scores.score.tolist()) == {0.91}
    assert all(1 <= len(r) <= 3 for r in scores.reasons)


def test_the_behaviour_json_becomes_one_column_per_feature():
    texts = ['{"history_count":2,"amount_ratio":1.5,"minutes_since_previous":null}', None]
    columns = risk_model.behaviour_columns(texts)
    assert list(columns) == list(BEHAVIOUR_FIELDS)
    assert columns["history_count"] == [2, None]
    assert columns["amount_ratio"] == [1.5, None]
    assert columns["minutes_since_previous"] == [None, None]


def test_the_udf_arguments_are_the_sql_signature():
    assert [f"{n} {t}" for n, t in risk_model.SQL_ARGUMENTS] == [
        "model_version INT", "models_path STRING", "threshold DOUBLE", "heuristic_params STRING",
        "risk_score DOUBLE", "amount DOUBLE", "channel STRING", "merchant_category STRING",
        "currency STRING", "hour BIGINT", "behaviour STRING",
    ]  # fmt: skip


def test_a_relative_models_path_is_under_the_project_and_an_absolute_one_stays(tmp_path):
    assert resolve_models_path("models") == PROJECT_ROOT / "models"
    assert resolve_models_path(str(tmp_path)) == tmp_path


def test_importing_the_scorer_loads_neither_lightgbm_nor_pyflink():
    code = (
        "import sys, udfs.risk_model; "
        "print(sorted(m for m in ('lightgbm', 'pyflink') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_heuristic_reasons_use_the_same_features_as_its_score():
    cols = feature_columns([1000.0], ["online"], ["crypto"], ["EUR"], [2], RiskParams())
    assert set(cols) == set(RiskParams().weights)
