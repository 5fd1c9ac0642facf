"""The learned risk model's feature vector: one definition for training and for serving.

A row is one transaction: its fields (amount, channel, merchant_category, currency and the
event's hour, UTC) and the card's behaviour before it, which the job computes in SQL
(docs/scoring.md has the table: history_count, amount_ratio, new_device, new_category, new_city,
km_from_usual, minutes_since_previous, count_1h, count_24h). `MODEL_FEATURES` names the
model's inputs in order; `feature_matrix` turns a batch of rows into the float matrix the
model reads, `feature_vector` one row. Training (jobs/model/train.py) and the job's scorer
(udfs/risk_model.py) both call them, so the two cannot disagree.

- `log_amount` = ln(1 + amount); NaN when the amount is missing.
- `online`, `risky_category`, `night`, `foreign_currency`: 0/1, exactly the heuristic's
  features of the same meaning (udfs/risk_score.py `feature_columns`, with the risk_score
  rule's online_channels, risky_categories, night_hours and home_currency).
- the behaviour features as numbers, booleans as 0/1; a NULL is NaN (LightGBM's missing value),
  e.g. `minutes_since_previous` of a card's first purchase.

When the frame has no `hour` column but an `event_time` one (training reads the lake), the hour
is the event time's UTC hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from udfs.risk_score import RiskParams, feature_columns

# the transaction's own fields a row needs beside the behaviour features
TRANSACTION_FIELDS: tuple[str, ...] = ("amount", "channel", "merchant_category", "currency", "hour")
# the behaviour features (the job's SQL computes them), taken over as numbers
BEHAVIOUR_FIELDS: tuple[str, ...] = (
    "history_count",
    "amount_ratio",
    "new_device",
    "new_category",
    "new_city",
    "km_from_usual",
    "minutes_since_previous",
    "count_1h",
    "count_24h",
)

# the model's inputs, in the order of the matrix's columns (and of the LightGBM model's
# feature names): the transaction's own, then the behaviour features
MODEL_FEATURES: tuple[str, ...] = (
    "log_amount",
    "online",
    "risky_category",
    "night",
    "foreign_currency",
    *BEHAVIOUR_FIELDS,
)

# a plausible row (a card's fourth purchase): what `fraudctl model promote` scores to check a
# model before it goes live
SAMPLE_ROW: dict[str, Any] = {
    "amount": 42.5,
    "channel": "pos",
    "merchant_category": "grocery",
    "currency": "USD",
    "hour": 14,
    "history_count": 3,
    "amount_ratio": 1.1,
    "new_device": False,
    "new_category": False,
    "new_city": False,
    "km_from_usual": 2.5,
    "minutes_since_previous": 1440.0,
    "count_1h": 0,
    "count_24h": 1,
}


def _numbers(values: Any) -> np.ndarray:
    """Numbers, booleans (0/1) and NULLs (NaN) as float64; anything else that is not a number
    is NaN."""
    import pandas as pd

    if isinstance(values, pd.Series) and (
        pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    ):  # the common case in the job: Arrow columns as numpy-backed Series
        return values.to_numpy(dtype=float, na_value=np.nan)
    if not isinstance(values, pd.Series):
        try:  # a list of numbers, booleans and None: numpy converts it at once
            return np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            pass
    series = pd.Series(values, dtype="object")
    series = series.map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _hours(rows: Mapping[str, Any]) -> Any:
    if "hour" in rows:
        return rows["hour"]
    if "event_time" in rows:
        import pandas as pd

        times = pd.to_datetime(pd.Series(rows["event_time"]), utc=True, errors="coerce")
        return times.dt.hour.astype("object").where(times.notna(), None).tolist()
    raise KeyError("hour")


def feature_matrix(rows: Mapping[str, Any], params: RiskParams | None = None) -> np.ndarray:
    """A batch of rows, column-wise (a pandas DataFrame, or a mapping of field -> values), as
    the (rows x MODEL_FEATURES) float64 matrix; `params` are the risk_score rule's settings
    (default: the config's defaults). KeyError names a missing field."""
    params = params or RiskParams()
    amount = _numbers(rows["amount"])
    heuristic = feature_columns(
        amount.tolist(),
        rows["channel"],
        rows["merchant_category"],
        rows["currency"],
        _hours(rows),
        params,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        log_amount = np.log1p(np.where(amount > -1, amount, np.nan))
    columns = {
        "log_amount": log_amount,
        "online": heuristic["channel_online"],
        "risky_category": heuristic["risky_category"],
        "night": heuristic["night"],
        "foreign_currency": heuristic["foreign_currency"],
        **{name: _numbers(rows[name]) for name in BEHAVIOUR_FIELDS},
    }
    n = len(amount)
    matrix = np.empty((n, len(MODEL_FEATURES)), dtype=np.float64)
    for i, name in enumerate(MODEL_FEATURES):
        matrix[:, i] = columns[name]
    return matrix


def feature_vector(row: Mapping[str, Any], params: RiskParams | None = None) -> list[float]:
    """One row's features in MODEL_FEATURES order (`feature_matrix` of a batch of one)."""
    return feature_matrix({k: [v] for k, v in row.items()}, params)[0].tolist()


def required_fields() -> Sequence[str]:
    """Every field a row must have (`hour` may come as `event_time`)."""
    return (*TRANSACTION_FIELDS, *BEHAVIOUR_FIELDS)
