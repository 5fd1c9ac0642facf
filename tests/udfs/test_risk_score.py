"""The risk score: features, weights, bounds, and the JSON settings the SQL passes in."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from config import load_settings
from jobs.sql.render import risk_score_params
from udfs.risk_score import RiskParams, _score_batch, features, risk_score, risk_scores


def test_the_riskiest_transaction_scores_one():
    p = RiskParams(weights={**RiskParams().weights})
    assert risk_score(5000.0, "online", "electronics", "EUR", 2, p) == 1.0


def test_a_plain_daytime_grocery_purchase_scores_low():
    assert risk_score(23.45, "pos", "grocery", "USD", 14) == pytest.approx(0.0082, abs=1e-4)


def test_the_crafted_night_electronics_case_crosses_the_default_threshold():
    # amount 1.0*0.35 + night 0.15 + risky 0.2 + online 0.1 + round 0.1 = 0.9
    assert risk_score(1000.0, "online", "electronics", "USD", 1) == pytest.approx(0.9)
    # 400.00: 0.14 + 0.15 + 0.2 + 0.1 + round 0.1 = 0.69, below 0.8
    assert risk_score(400.0, "online", "electronics", "USD", 1) == pytest.approx(0.69)


@pytest.mark.parametrize(
    ("name", "args", "value"),
    [
        ("amount", (250.0, None, None, None, None), 0.25),
        ("amount", (99999.0, None, None, None, None), 1.0),
        ("night", (1.0, None, None, None, 4), 1.0),
        ("night", (1.0, None, None, None, 5), 0.0),
        ("risky_category", (1.0, None, "jewelry", None, None), 1.0),
        ("channel_online", (1.0, "ecommerce", None, None, None), 1.0),
        ("round_amount", (300.0, None, None, None, None), 1.0),
        ("round_amount", (300.5, None, None, None, None), 0.0),
        ("round_amount", (50.0, None, None, None, None), 0.0),
        ("foreign_currency", (1.0, None, None, "GBP", None), 1.0),
        ("foreign_currency", (1.0, None, None, None, None), 0.0),
    ],
)
def test_each_feature(name, args, value):
    assert features(*args, params=RiskParams())[name] == value


@pytest.mark.parametrize(
    "args",
    [
        (0.01, None, None, None, None),
        (1e12, "online", "crypto", "XYZ", 0),
        (float("inf"), "web", "travel", "EUR", 3),
        (-5.0, None, None, None, 23),
    ],
)
def test_score_is_always_in_zero_one(args):
    assert 0.0 <= risk_score(*args) <= 1.0


def test_weights_are_normalised_so_any_positive_weights_stay_in_bounds():
    p = RiskParams(weights={"amount": 10.0, "night": 30.0})
    assert risk_score(1000.0, None, None, None, 1, p) == 1.0
    assert risk_score(1000.0, None, None, None, 12, p) == 0.25


def test_the_udf_body_reads_the_rendered_settings_and_passes_nulls_through():
    s = load_settings(job={"rules": {"risk_score": {"weights": {"channel_online": 1.0}}}})
    params = risk_score_params(s)
    assert json.loads(params)["weights"] == {"channel_online": 1.0}
    out = _score_batch(
        pd.Series([10.0, 10.0, None]),
        pd.Series(["online", "pos", "online"]),
        pd.Series([None, None, None]),
        pd.Series([None, None, None]),
        pd.Series([12, 12, 12]),
        pd.Series([params] * 3),
    )
    assert out.iloc[0] == 1.0 and out.iloc[1] == 0.0 and pd.isna(out.iloc[2])


def test_a_batch_scores_each_transaction_as_if_alone():
    rows = [
        (1000.0, "online", "electronics", "USD", 1),
        (23.45, "pos", "grocery", "USD", 14),
        (300.0, "web", "travel", "EUR", 4),
        (float("inf"), None, None, None, None),
        (-5.0, "ecommerce", "crypto", "GBP", 23),
        (100.0, "pos", "jewelry", None, 0),
    ]
    batch = risk_scores(*zip(*rows, strict=True))
    assert list(batch) == [risk_score(*row) for row in rows]


def test_the_vectorized_udf_body_scores_a_batch_like_the_pure_function():
    params = risk_score_params(load_settings())
    out = _score_batch(
        pd.Series([1000.0, 23.45, None]),
        pd.Series(["online", "pos", "pos"]),
        pd.Series(["electronics", "grocery", None]),
        pd.Series(["USD", "USD", None]),
        pd.Series([1, 14, 3]),
        pd.Series([params] * 3),
    )
    assert out.iloc[0] == pytest.approx(risk_score(1000.0, "online", "electronics", "USD", 1))
    assert out.iloc[1] == pytest.approx(risk_score(23.45, "pos", "grocery", "USD", 14))
    assert pd.isna(out.iloc[2])


def test_unknown_weights_are_refused_by_config():
    from config import ConfigError

    with pytest.raises(ConfigError, match="unknown risk_score weights"):
        load_settings(job={"rules": {"risk_score": {"weights": {"shoe_size": 1.0}}}})


def test_the_flink_wrapper_has_the_ddl_types():
    from udfs import risk_score as module

    fn = module.risk_score_udf
    assert [str(t) for t in fn._input_types] == [
        "DOUBLE",
        "VARCHAR",
        "VARCHAR",
        "VARCHAR",
        "BIGINT",
        "VARCHAR",
    ]
    assert str(fn._result_type) == "DOUBLE"
