"""A small synthetic training frame: the behaviour features of a few thousand transactions, a
share of them fraud that looks like fraud (new device, far away, a large amount for the card)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def frame(
    rows: int = 3000, fraud_share: float = 0.05, seed: int = 1
) -> tuple[pd.DataFrame, set[str]]:
    """(frame, positive transaction ids), one row a minute from 2026-12-01T00:00Z."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(rows) < fraud_share
    noisy = rng.random(rows) < 0.003  # a few of each class look like the other
    looks = fraud ^ noisy
    start = pd.Timestamp("2026-12-01T00:00:00Z")
    df = pd.DataFrame(
        {
            "transaction_id": [f"t{i:05d}" for i in range(rows)],
            "event_time": [start + pd.Timedelta(minutes=i) for i in range(rows)],
            "amount": np.where(
                looks, rng.uniform(300, 2000, rows), rng.uniform(2, 150, rows)
            ).round(2),
            "channel": np.where(looks & (rng.random(rows) < 0.7), "online", "pos"),
            "merchant_category": np.where(looks, "electronics", "grocery"),
            "currency": "USD",
            "history_count": rng.integers(0, 60, rows),
            "amount_ratio": np.where(looks, rng.uniform(3, 20, rows), rng.uniform(0.3, 2, rows)),
            "new_device": looks & (rng.random(rows) < 0.8),
            "new_category": rng.random(rows) < 0.1,
            "new_city": looks & (rng.random(rows) < 0.6),
            "km_from_usual": np.where(
                looks, rng.uniform(100, 3000, rows), rng.uniform(0, 20, rows)
            ),
            "minutes_since_previous": np.where(
                rng.random(rows) < 0.05, np.nan, rng.uniform(1, 5000, rows)
            ),
            "count_1h": rng.integers(0, 3, rows),
            "count_24h": rng.integers(0, 10, rows),
        }
    )
    df["hour"] = df["event_time"].dt.hour
    return df, set(df["transaction_id"][fraud])
