"""Risk score of one transaction in [0, 1]: the weighted mean of six features in [0, 1].

Features (weights from config `job.rules.risk_score.weights`; defaults in parentheses):

- `amount` (0.35): min(amount / amount_scale, 1), amount_scale default 1000.
- `night` (0.15): 1 when the event hour (UTC) is in night_hours [start, end), default [0, 5).
- `risky_category` (0.2): 1 when merchant_category is in risky_categories.
- `channel_online` (0.1): 1 when channel is in online_channels (card not present).
- `round_amount` (0.1): 1 for a whole amount of at least 100 that is a multiple of 100.
- `foreign_currency` (0.1): 1 when currency differs from home_currency (default USD).

score = sum(weight_f * feature_f) / sum(weights), so it stays in [0, 1] for any weights >= 0.
The settings reach the Flink UDF as one JSON string literal in the rendered SQL, so the script
shows every number that decides an alert.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

DEFAULT_WEIGHTS = {
    "amount": 0.35,
    "night": 0.15,
    "risky_category": 0.2,
    "channel_online": 0.1,
    "round_amount": 0.1,
    "foreign_currency": 0.1,
}


@dataclass(frozen=True)
class RiskParams:
    """Weights and feature settings (mirrors config.job.RiskScoreRule)."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    amount_scale: float = 1000.0
    night_hours: tuple[int, int] = (0, 5)
    risky_categories: frozenset[str] = frozenset(
        {"electronics", "jewelry", "gift_cards", "crypto", "travel"}
    )
    online_channels: frozenset[str] = frozenset({"online", "ecommerce", "web"})
    home_currency: str = "USD"

    @classmethod
    def from_json(cls, text: str) -> RiskParams:
        """Parse the JSON the renderer passes (jobs/render.py `risk_score_params`)."""
        raw: dict[str, Any] = json.loads(text)
        return cls(
            weights={k: float(v) for k, v in raw["weights"].items()},
            amount_scale=float(raw["amount_scale"]),
            night_hours=(int(raw["night_hours"][0]), int(raw["night_hours"][1])),
            risky_categories=frozenset(raw["risky_categories"]),
            online_channels=frozenset(raw["online_channels"]),
            home_currency=str(raw["home_currency"]),
        )


def features(
    amount: float,
    channel: str | None,
    merchant_category: str | None,
    currency: str | None,
    event_hour: int | None,
    params: RiskParams,
) -> dict[str, float]:
    """Each feature's value in [0, 1] (see the module docstring)."""
    lo, hi = params.night_hours
    amt = float(amount) if amount is not None and math.isfinite(float(amount)) else 0.0
    return {
        "amount": min(max(amt, 0.0) / params.amount_scale, 1.0),
        "night": 1.0 if event_hour is not None and lo <= event_hour < hi else 0.0,
        "risky_category": 1.0 if merchant_category in params.risky_categories else 0.0,
        "channel_online": 1.0 if channel in params.online_channels else 0.0,
        "round_amount": 1.0 if amt >= 100 and amt % 100 == 0 else 0.0,
        "foreign_currency": (
            1.0 if currency is not None and currency != params.home_currency else 0.0
        ),
    }


def risk_score(
    amount: float,
    channel: str | None,
    merchant_category: str | None,
    currency: str | None,
    event_hour: int | None,
    params: RiskParams | None = None,
) -> float:
    """The weighted mean of `features(...)`, rounded to 4 decimals, in [0, 1]."""
    params = params or RiskParams()
    f = features(amount, channel, merchant_category, currency, event_hour, params)
    total = sum(params.weights.values())
    if total <= 0:
        return 0.0
    score = sum(w * f.get(name, 0.0) for name, w in params.weights.items()) / total
    return round(min(max(score, 0.0), 1.0), 4)


@lru_cache(maxsize=8)
def _params(text: str) -> RiskParams:
    return RiskParams.from_json(text)


def _score_row(
    amount: float | None,
    channel: str | None,
    merchant_category: str | None,
    currency: str | None,
    event_hour: int | None,
    params_json: str,
) -> float | None:
    """UDF body: NULL amount gives NULL, anything else a score."""
    if amount is None:
        return None
    return risk_score(
        amount, channel, merchant_category, currency, event_hour, _params(params_json)
    )


def _score_batch(amount, channel, merchant_category, currency, event_hour, params_json):  # type: ignore[no-untyped-def]
    """Vectorized UDF body: pandas Series in (the params literal arrives as a Series too),
    a Series of scores out."""
    import pandas as pd

    text = params_json if isinstance(params_json, str) else params_json.iloc[0]
    params = _params(text)

    def one(a, ch, cat, cur, hour):  # type: ignore[no-untyped-def]
        if a is None or pd.isna(a):
            return None
        h = None if hour is None or pd.isna(hour) else int(hour)
        return risk_score(float(a), ch, cat, cur, h, params)

    scores = [
        one(*row)
        for row in zip(amount, channel, merchant_category, currency, event_hour, strict=True)
    ]
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
