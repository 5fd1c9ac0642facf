"""The model's feature vector (udfs/behaviour_features.py): order, encodings, NULLs, and the
heuristic's settings reused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from udfs.behaviour_features import MODEL_FEATURES, SAMPLE_ROW, feature_matrix, feature_vector
from udfs.risk_score import RiskParams


def _row(**changes):
    return {**SAMPLE_ROW, **changes}


def _named(row, params=None):
    return dict(zip(MODEL_FEATURES, feature_vector(row, params), strict=True))


def test_the_feature_list_is_the_designs_in_order():
    assert MODEL_FEATURES == (
        "log_amount", "online", "risky_category", "night", "foreign_currency", "history_count",
        "amount_ratio", "new_device", "new_category", "new_city", "km_from_usual",
        "minutes_since_previous", "count_1h", "count_24h",
    )  # fmt: skip


def test_a_card_seen_before_buying_groceries_by_day():
    f = _named(SAMPLE_ROW)
    assert f["log_amount"] == pytest.approx(math.log(43.5))
    assert (f["online"], f["risky_category"], f["night"], f["foreign_currency"]) == (0, 0, 0, 0)
    assert (f["history_count"], f["amount_ratio"], f["km_from_usual"]) == (3, 1.1, 2.5)
    assert (f["new_device"], f["new_category"], f["new_city"]) == (0, 0, 0)
    assert (f["minutes_since_previous"], f["count_1h"], f["count_24h"]) == (1440, 0, 1)


def test_a_risky_online_night_purchase_in_a_foreign_currency_on_a_new_device():
    f = _named(
        _row(channel="web", merchant_category="crypto", hour=3, currency="EUR", new_device=True)
    )
    assert (f["online"], f["risky_category"], f["night"], f["foreign_currency"]) == (1, 1, 1, 1)
    assert f["new_device"] == 1


def test_the_risk_score_rules_settings_decide_the_shared_features():
    params = RiskParams(
        online_channels=frozenset({"app"}),
        risky_categories=frozenset({"grocery"}),
        night_hours=(13, 15),
        home_currency="EUR",
    )
    f = _named(_row(channel="app"), params)
    assert (f["online"], f["risky_category"], f["night"], f["foreign_currency"]) == (1, 1, 1, 1)


def test_nulls_are_nan_and_a_first_purchase_has_no_gap():
    f = _named(_row(minutes_since_previous=None, new_city=None, history_count=None, amount=None))
    for name in ("minutes_since_previous", "new_city", "history_count", "log_amount"):
        assert math.isnan(f[name]), name


def test_a_batch_from_pandas_columns_equals_its_rows_one_by_one():
    rows = [
        SAMPLE_ROW,
        _row(amount=999.0, channel="online", new_device=True, minutes_since_previous=None),
        _row(currency=None, hour=None, count_1h=7),
    ]
    frame = pd.DataFrame(rows)
    # the job's Arrow columns: nullable ints and booleans
    frame["new_device"] = frame["new_device"].astype("boolean")
    frame["count_1h"] = frame["count_1h"].astype("Int32")
    matrix = feature_matrix(frame)
    assert matrix.shape == (3, len(MODEL_FEATURES))
    assert matrix.dtype == np.float64
    expected = np.array([feature_vector(r) for r in rows])
    np.testing.assert_array_equal(matrix, expected)


def test_the_hour_comes_from_the_event_time_when_absent():
    row = {k: v for k, v in SAMPLE_ROW.items() if k != "hour"}
    frame = pd.DataFrame([row, row])
    frame["event_time"] = pd.to_datetime(["2026-12-01T02:30:00Z", "2026-12-01T14:00:00Z"])
    night = feature_matrix(frame)[:, MODEL_FEATURES.index("night")]
    assert night.tolist() == [1.0, 0.0]


def test_a_missing_field_is_named():
    row = {k: v for k, v in SAMPLE_ROW.items() if k != "km_from_usual"}
    with pytest.raises(KeyError, match="km_from_usual"):
        feature_vector(row)
