"""Risk score of one transaction in [0, 1]: the weighted mean of six features in [0, 1].

Features (their weights and settings: config `job.rules.risk_score`, whose defaults are
written once, in config/rules.py `RiskScoreRule`):

- `amount`: min(amount / amount_scale, 1).
- `night`: 1 when the event hour (UTC) is in night_hours [start, end).
- `risky_category`: 1 when merchant_category is in risky_categories.
- `channel_online`: 1 when channel is in online_channels (card not present).
- `round_amount`: 1 for a whole amount of at least 100 that is a multiple of 100.
- `foreign_currency`: 1 when currency differs from home_currency.

score = sum(weight_f * feature_f) / sum(weights), so it stays in [0, 1] for any weights >= 0.
The settings reach the Flink UDF as one JSON string literal in the rendered SQL, so the script
shows every number that decides an alert. Scores are computed a batch at a time (numpy,
`risk_scores`); the one-transaction functions are that batch of one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np


def _default(name: str) -> Any:
    """A feature setting's default: config/rules.py RiskScoreRule's, the one place it is
    written."""
    from config.rules import RiskScoreRule

    return RiskScoreRule.model_fields[name].get_default(call_default_factory=True)


@dataclass(frozen=True)
class RiskParams:
    """Weights and feature settings: config.rules.RiskScoreRule's (defaults from it)."""

    weights: dict[str, float] = field(default_factory=lambda: dict(_default("weights")))
    amount_scale: float = field(default_factory=lambda: _default("amount_scale"))
    night_hours: tuple[int, int] = field(default_factory=lambda: tuple(_default("night_hours")))
    risky_categories: frozenset[str] = field(
        default_factory=lambda: frozenset(_default("risky_categories"))
    )
    online_channels: frozenset[str] = field(
        default_factory=lambda: frozenset(_default("online_channels"))
    )
    home_currency: str = field(default_factory=lambda: _default("home_currency"))

    @classmethod
    def from_json(cls, text: str) -> RiskParams:
        """Parse the JSON the renderer passes (jobs/sql/render.py `risk_score_params`)."""
        raw: dict[str, Any] = json.loads(text)
        return cls(
            weights={k: float(v) for k, v in raw["weights"].items()},
            amount_scale=float(raw["amount_scale"]),
            night_hours=(int(raw["night_hours"][0]), int(raw["night_hours"][1])),
            risky_categories=frozenset(raw["risky_categories"]),
            online_channels=frozenset(raw["online_channels"]),
            home_currency=str(raw["home_currency"]),
        )


def feature_columns(
    amount: Sequence[float | None],
    channel: Sequence[str | None],
    merchant_category: Sequence[str | None],
    currency: Sequence[str | None],
    event_hour: Sequence[int | None],
    params: RiskParams,
) -> dict[str, np.ndarray]:
    """Each feature of a batch of transactions, as arrays of values in [0, 1] (see the module
    docstring); a missing or non-finite amount counts as 0, a missing hour as not night."""
    import pandas as pd

    amt = pd.to_numeric(pd.Series(amount, dtype="object"), errors="coerce").to_numpy(float)
    amt = np.where(np.isfinite(amt), amt, 0.0)
    hour = pd.to_numeric(pd.Series(event_hour, dtype="object"), errors="coerce").to_numpy(float)
    cur = pd.Series(currency, dtype="object")
    lo, hi = params.night_hours
    with np.errstate(invalid="ignore"):  # NaN hours compare False: not night
        night = (hour >= lo) & (hour < hi)
    return {
        "amount": np.minimum(np.maximum(amt, 0.0) / params.amount_scale, 1.0),
        "night": night.astype(float),
        "risky_category": pd.Series(merchant_category, dtype="object")
        .isin(params.risky_categories)
        .to_numpy(float),
        "channel_online": pd.Series(channel, dtype="object")
        .isin(params.online_channels)
        .to_numpy(float),
        "round_amount": ((amt >= 100) & (np.mod(amt, 100) == 0)).astype(float),
        "foreign_currency": (cur.notna() & (cur != params.home_currency)).to_numpy(float),
    }


def risk_scores(
    amount: Sequence[float | None],
    channel: Sequence[str | None],
    merchant_category: Sequence[str | None],
    currency: Sequence[str | None],
    event_hour: Sequence[int | None],
    params: RiskParams | None = None,
) -> np.ndarray:
    """The weighted mean of `feature_columns(...)` per transaction, rounded to 4 decimals, in
    [0, 1]; NaN where the amount is missing. Vectorized: one numpy pass per batch."""
    params = params or RiskParams()
    f = feature_columns(amount, channel, merchant_category, currency, event_hour, params)
    total = sum(params.weights.values())
    n = len(f["amount"])
    if total <= 0:
        scores = np.zeros(n)
    else:
        weighted = sum(w * f.get(name, np.zeros(n)) for name, w in params.weights.items())
        scores = np.round(np.clip(weighted / total, 0.0, 1.0), 4)
    import pandas as pd

    missing = pd.isna(pd.Series(amount, dtype="object")).to_numpy(bool)
    return np.where(missing, np.nan, scores)


def features(
    amount: float,
    channel: str | None,
    merchant_category: str | None,
    currency: str | None,
    event_hour: int | None,
    params: RiskParams,
) -> dict[str, float]:
    """Each feature's value in [0, 1] for one transaction (`feature_columns` on a batch of one)."""
    cols = feature_columns(
        [amount], [channel], [merchant_category], [currency], [event_hour], params
    )
    return {name: float(values[0]) for name, values in cols.items()}


def risk_score(
    amount: float,
    channel: str | None,
    merchant_category: str | None,
    currency: str | None,
    event_hour: int | None,
    params: RiskParams | None = None,
) -> float:
    """The score of one transaction (`risk_scores` on a batch of one)."""
    batch = risk_scores([amount], [channel], [merchant_category], [currency], [event_hour], params)
    return float(batch[0])


@lru_cache(maxsize=8)
def params_from_json(text: str) -> RiskParams:
    """The parsed settings literal the rendered SQL passes to the UDF (cached: it is the same
    string for every batch)."""
    return RiskParams.from_json(text)


def _score_batch(amount, channel, merchant_category, currency, event_hour, params_json):  # type: ignore[no-untyped-def]
    """Vectorized UDF body: pandas Series in (the params literal arrives as a Series too), a
    Series of scores out (NaN where the amount is NULL)."""
    import pandas as pd

    text = params_json if isinstance(params_json, str) else params_json.iloc[0]
    scores = risk_scores(
        amount.tolist(),
        channel.tolist(),
        merchant_category.tolist(),
        currency.tolist(),
        event_hour.tolist(),
        params_from_json(text),
    )
    return pd.Series(scores, dtype="float64")


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """`risk_score_udf`, built on first access so plain imports do not load PyFlink.

    SQL signature: risk_score(amount DOUBLE, channel STRING, merchant_category STRING,
    currency STRING, event_hour BIGINT, params STRING) -> DOUBLE.
    """
    if name == "risk_score_udf":
        from pyflink.table import DataTypes
        from pyflink.table.udf import udf

        fn = udf(
            _score_batch,
            input_types=[
                DataTypes.DOUBLE(),
                DataTypes.STRING(),
                DataTypes.STRING(),
                DataTypes.STRING(),
                DataTypes.BIGINT(),
                DataTypes.STRING(),
            ],
            result_type=DataTypes.DOUBLE(),
            func_type="pandas",
            deterministic=True,
        )
        globals()["risk_score_udf"] = fn
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
