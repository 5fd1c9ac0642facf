"""The training rows of `fraudctl model train`: the behaviour features as the job computes them.

Training and serving share one definition of a feature: the job's own `card_legs` view (its
Java aggregate `card_behaviour`, sql_templates/enrichment/card_legs.sql.j2), run in-process over
history by the replay of jobs/history/replay.py, in event-time order and without the rows the
live job found late, as the live job's OVER operator sees them. So a transaction's features
for training are the ones the live job scored it with (tests/jobs/test_feature_parity_live.py).

A card's profile starts with the history given: features of a range's first hours know less of
each card than the live job did (`warmup` reads that much more history before the range, and
keeps only the range's rows).

One row per on-time transaction: transaction_id, event_time (UTC), card_token, amount, channel,
merchant_category, currency, hour (UTC), risk_score (the weighted sum, version 0) and the
behaviour features (docs/contract.md "Behaviour features").
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from config import Settings
from config.rule_changes import initial_parameters
from jobs.sql.render import risk_score_params

# the generator's text fields the lake keeps as they are
TEXT_FIELDS = ("user_id", "device_id", "currency", "merchant", "merchant_category", "channel")


def frame(rows: Any) -> Any:
    """The replay's rows (a DataFrame) with the behaviour JSON spread into one column per
    feature, sorted by event time (then transaction id: the same order every time)."""
    import pandas as pd

    from udfs.risk_model import behaviour_columns

    if rows.empty:
        return rows
    features = pd.DataFrame(behaviour_columns(rows["behaviour"].tolist()), index=rows.index)
    out = pd.concat([rows.drop(columns=["behaviour"]), features], axis=1)
    out["event_time"] = pd.to_datetime(out["event_time"]).dt.tz_localize("UTC")
    return out.sort_values(["event_time", "transaction_id"], kind="stable").reset_index(drop=True)


def table_features(settings: Settings, table: Any) -> Any:
    """The features of the transactions of `table` (a pyarrow Table shaped as the lake's
    transactions, in event-time order), by the job's own card_legs view."""
    from jobs.history.replay import card_features, write_replay_input
    from udfs.rule_parameters import ParameterHistory

    # the rules' parameters do not change a feature; the view carries the config's. The
    # features are the job's with scoring.enabled, whatever this config says
    history = ParameterHistory(initial_parameters(settings.job.rules))
    scoring = settings.scoring.model_copy(update={"enabled": True})
    settings = settings.model_copy(update={"scoring": scoring})
    import pyarrow.dataset as ds

    with tempfile.TemporaryDirectory(prefix="fraud-features-") as tmp:
        path = Path(tmp) / "transactions.parquet"
        write_replay_input(table, history, path)
        out = card_features(settings, path, Path(tmp) / "features")
        return frame(ds.dataset(out, format="parquet").to_table().to_pandas())


def lake_features(
    settings: Settings,
    start: dt.datetime,
    end: dt.datetime,
    warmup: dt.timedelta = dt.timedelta(0),
) -> Any:
    """The lake's transactions with event time in [start, end), with their behaviour features
    (a pandas DataFrame); the cards' profiles are built from `start - warmup` on."""
    from jobs.history.lake import transactions

    out = table_features(settings, transactions(settings, start - warmup, end))
    if warmup and not out.empty:
        out = out[out["event_time"] >= start.astimezone(dt.UTC)].reset_index(drop=True)
    return out


def generated_table(settings: Settings, seed: int, events: int) -> tuple[Any, list[dict[str, Any]]]:
    """`events` transactions of the producer's generator (`seed`, the config's population and
    rates) shaped as the lake keeps them (card numbers tokenised with this checkout's key, the
    weighted-sum score as the job gives it), and its truth records."""
    import pyarrow as pa

    from producer.generator import labelled_stream
    from udfs.card_token import card_last4, card_token
    from udfs.risk_score import RiskParams, risk_scores

    p = settings.producer
    records, truth = labelled_stream(
        events,
        seed,
        settings.card_token_secret(),
        population=p.population,
        events_per_second=p.rate,
        fraud_rate=p.fraud_rate,
        lookalike_rate=p.lookalike_rate,
        scenario_weights=p.scenario_weights,
    )
    records.sort(key=lambda r: r["event_time"])
    key = settings.card_token_secret()
    when = [dt.datetime.fromisoformat(r["event_time"].replace("Z", "+00:00")) for r in records]
    amounts = [float(r["amount"]) for r in records]
    params = RiskParams.from_json(risk_score_params(settings))
    scores = risk_scores(
        amounts,
        [r["channel"] for r in records],
        [r["merchant_category"] for r in records],
        [r["currency"] for r in records],
        [t.hour for t in when],
        params,
    )
    columns: dict[str, Any] = {
        "transaction_id": [r["transaction_id"] for r in records],
        "card_token": [card_token(r["card_number"], key) for r in records],
        "card_last4": [card_last4(r["card_number"]) for r in records],
        **{f: [r[f] for r in records] for f in TEXT_FIELDS},
        "amount": pa.array([Decimal(str(a)) for a in amounts], pa.decimal128(18, 2)),
        **{f: [r["location"][f] for r in records] for f in ("city", "state")},
        **{f: [float(r["location"][f]) for r in records] for f in ("lat", "lon")},
        "risk_score": scores,
        "late": [False] * len(records),
        "kafka_partition": pa.array([0] * len(records), pa.int32()),
        "kafka_offset": list(range(len(records))),
        "event_time": pa.array([t.replace(tzinfo=None) for t in when], pa.timestamp("ms")),
    }
    return pa.table(columns), truth


def generated_features(settings: Settings, seed: int, events: int) -> tuple[Any, set[str]]:
    """`generated_table`'s transactions with their behaviour features, and its labels."""
    from fraudctl.evaluate import read_truth
    from jobs.model.train import positives

    table, truth = generated_table(settings, seed, events)
    labels = positives(read_truth(json.dumps(record) for record in truth))
    return table_features(settings, table), labels
