"""The training rows of `fraudctl model train`: the behaviour features as the job computes them.

PLACEHOLDER (branch `model`): the integrator replaces this module with the one that runs the
job's own feature SQL (sql_templates/enrichment/card_legs.sql.j2's `card_behaviour`) over the
lake or over generated traffic. Until then both functions raise NotImplementedError; their
signatures are the contract jobs/model/cli.py calls.

Both return one row per transaction: transaction_id, event_time (UTC datetime), amount,
channel, merchant_category, currency, hour (UTC, INT) and the behaviour features of
udfs/behaviour_features.py (history_count, amount_ratio, new_device, new_category, new_city,
km_from_usual, minutes_since_previous, count_1h, count_24h).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from config import Settings


def lake_features(settings: Settings, start: dt.datetime, end: dt.datetime) -> Any:
    """The lake's transactions with event time in [start, end), with their behaviour features
    (a pandas DataFrame)."""
    raise NotImplementedError("jobs/model/features.py lake_features: written by the integrator")


def generated_features(settings: Settings, seed: int, events: int) -> tuple[Any, Any]:
    """`events` generated transactions (the producer, `seed`) with their behaviour features,
    and their labels (positive transaction ids): (DataFrame, labels)."""
    raise NotImplementedError(
        "jobs/model/features.py generated_features: written by the integrator"
    )
