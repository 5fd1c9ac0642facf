"""Training a risk model: LightGBM on the behaviour features, judged on the latest 20 % of time.

The rows (one per transaction: transaction_id, event_time, the transaction fields and the
behaviour features of udfs/behaviour_features.py) are sorted by event time; the latest 20 % is
the hold-out, the rest trains. The model is a LightGBM binary classifier, made deterministic
(a fixed seed, one thread, `deterministic`, row-wise histograms) and small (200 trees of 15
leaves: a text file of a few hundred KB, committed as the default model). Fraud's rarity is
not reweighted: with `scale_pos_weight` = negatives / positives (about 900 on generated
traffic) the scores saturated at 0 and 1 and the hold-out PR-AUC fell from 0.99 to 0.02; L2
regularisation and at least 50 rows per leaf keep the few fraud rows from being memorised
(docs/benchmarks.md, "Learned scoring").

On the hold-out:
- the alert threshold is the lowest score at which precision is at least 0.9 (`precision_0.9`);
  when no score reaches that, the score of the best F1 (`max_f1`), and the meta says so;
- precision and recall at that threshold, and PR-AUC as average precision (the step-wise area
  under the precision-recall curve, as scikit-learn computes it; here in numpy).

The meta's `data_digest` is SHA-256 over the rows sorted by transaction id (id, label, feature
values): the same data gives the same digest, whatever its order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudctl.evaluate import Truth, read_truth
from udfs.behaviour_features import MODEL_FEATURES, feature_matrix
from udfs.risk_score import RiskParams

HOLDOUT_SHARE = 0.2
TARGET_PRECISION = 0.9
POSITIVE_RULE = "RISK_SCORE"  # the scenarios whose transactions are the positives


class TrainingError(ValueError):
    """The data cannot train a model (too few rows, no fraud in a part); says why."""


def default_params(seed: int = 7) -> dict[str, Any]:
    """LightGBM's settings: deterministic and small (see the module docstring)."""
    return {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 50,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "force_row_wise": True,
        "verbosity": -1,
    }


NUM_TREES = 200


@dataclass
class TrainedModel:
    """A trained booster and its meta (all of meta.json but `version`, which the store gives)."""

    booster: Any
    meta: dict[str, Any]

    def model_text(self) -> str:
        return self.booster.model_to_string()

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta["metrics"]


def labels_from_truth(path: str | Path) -> set[str]:
    """The positives of a producer truth file (JSONL, `fraudctl produce --truth`):
    `positives`. ValueError for a line that is not JSON."""
    with Path(path).open() as fh:
        return positives(read_truth(fh))


def positives(truth: Truth) -> set[str]:
    """The transaction ids of the scenarios expecting RISK_SCORE. Every other transaction,
    look-alikes included, is a negative."""
    return {
        tid for sc in truth.scenarios if sc.expected_rule == POSITIVE_RULE
        for tid in sc.transaction_ids
    }  # fmt: skip


def _label_vector(frame: Any, labels: Iterable[str] | Any) -> np.ndarray:
    import pandas as pd

    if isinstance(labels, pd.Series):
        aligned = labels.reindex(frame.index)
        if aligned.isna().any():
            raise TrainingError("the labels do not cover every row of the frame (by index)")
        return aligned.astype(bool).to_numpy(dtype=np.int8)
    return frame["transaction_id"].astype(str).isin(set(labels)).to_numpy(dtype=np.int8)


def data_digest(ids: Iterable[str], y: np.ndarray, x: np.ndarray) -> str:
    """SHA-256 over the rows sorted by id: id, label, feature values (NaN as `nan`)."""
    ids = [str(i) for i in ids]
    digest = hashlib.sha256()
    for i in sorted(range(len(ids)), key=ids.__getitem__):
        values = ",".join(repr(v) for v in x[i].tolist())
        digest.update(f"{ids[i]}\t{int(y[i])}\t{values}\n".encode())
    return digest.hexdigest()


def _cuts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct score, highest first: the score, and the true and false positives of
    alerting at it (score >= cut)."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return p_sorted[last_of_tie], tp.astype(float), fp.astype(float)


def average_precision(y: np.ndarray, p: np.ndarray) -> float | None:
    """Average precision: sum over the distinct scores of (recall gained) x precision there;
    None without a positive."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    positives = y.sum()
    if positives == 0:
        return None
    _, tp, fp = _cuts(y, p)
    recall = tp / positives
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def choose_threshold(
    y: np.ndarray, p: np.ndarray, target: float = TARGET_PRECISION
) -> tuple[float, str]:
    """The lowest score at which precision >= `target` (`precision_0.9`), else the score of
    the best F1 (`max_f1`)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    cuts, tp, fp = _cuts(y, p)
    precision = np.divide(tp, tp + fp)
    good = np.flatnonzero((precision >= target) & (tp > 0))
    if len(good):
        return float(cuts[good[-1]]), f"precision_{target:g}"
    f1 = np.divide(2 * tp, 2 * tp + fp + (y.sum() - tp))
    return float(cuts[int(np.argmax(f1))]), "max_f1"


def precision_recall(
    y: np.ndarray, p: np.ndarray, threshold: float
) -> tuple[float | None, float | None]:
    alert = np.asarray(p) >= threshold
    y = np.asarray(y, dtype=bool)
    tp, alerts, positives = int((alert & y).sum()), int(alert.sum()), int(y.sum())
    return (tp / alerts if alerts else None), (tp / positives if positives else None)


def _iso(value: Any) -> str | None:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat()


def train(
    frame: Any,
    labels: Iterable[str] | Any,
    *,
    params: RiskParams | None = None,
    seed: int = 7,
    num_trees: int = NUM_TREES,
    trained_from: Any = None,
    trained_to: Any = None,
    source: str = "",
) -> TrainedModel:
    """Train on `frame` (pandas: transaction_id, event_time, the fields of
    udfs/behaviour_features.py), `labels` being the positive transaction ids (a set) or a
    boolean Series indexed like the frame. `params` are the risk_score rule's settings the
    features use (its online channels, risky categories, night hours, home currency: default
    the config's defaults). `trained_from`/`trained_to` default to the data's first and last
    event time. TrainingError when the data cannot train a model."""
    import lightgbm
    import pandas as pd

    if len(frame) < 10:
        raise TrainingError(f"{len(frame)} rows: too few to train and hold out 20 %")
    y_all = _label_vector(frame, labels)
    times = pd.to_datetime(frame["event_time"], utc=True)
    order = np.lexsort((frame["transaction_id"].astype(str).to_numpy(), times.to_numpy()))
    frame, y_all, times = frame.iloc[order], y_all[order], times.iloc[order]
    features = params or RiskParams()
    x_all = feature_matrix(frame, features)
    n = len(frame)
    n_hold = max(1, round(n * HOLDOUT_SHARE))
    split = n - n_hold
    x_train, y_train, x_hold, y_hold = x_all[:split], y_all[:split], x_all[split:], y_all[split:]
    positives = int(y_train.sum())
    if positives == 0 or positives == len(y_train):
        raise TrainingError(
            f"the training part ({split} rows) has {positives} positives: it needs both classes"
        )
    if y_hold.sum() == 0:
        raise TrainingError(
            f"the hold-out (the latest {n_hold} rows by event time) has no positive: nothing "
            "to measure precision and recall on; train on a longer range"
        )
    lgb_params = default_params(seed)
    dataset = lightgbm.Dataset(
        x_train, label=y_train, feature_name=list(MODEL_FEATURES), params=lgb_params
    )
    booster = lightgbm.train(lgb_params, dataset, num_boost_round=num_trees)
    scores = booster.predict(x_hold)
    threshold, rule = choose_threshold(y_hold, scores)
    precision, recall = precision_recall(y_hold, scores, threshold)
    meta = {
        "features": list(MODEL_FEATURES),
        "trained_from": _iso(trained_from) or _iso(times.iloc[0]),
        "trained_to": _iso(trained_to) or _iso(times.iloc[-1]),
        "data_digest": data_digest(frame["transaction_id"], y_all, x_all),
        "rows": n,
        "positives": int(y_all.sum()),
        "metrics": {
            "precision": precision,
            "recall": recall,
            "pr_auc": average_precision(y_hold, scores),
            "threshold": threshold,
            "threshold_rule": rule,
            "holdout_from": _iso(times.iloc[split]),
            "holdout_rows": n_hold,
            "holdout_positives": int(y_hold.sum()),
        },
        "params": {**lgb_params, "num_trees": num_trees},
        "feature_settings": {
            "online_channels": sorted(features.online_channels),
            "risky_categories": sorted(features.risky_categories),
            "night_hours": list(features.night_hours),
            "home_currency": features.home_currency,
        },
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": source,
    }
    return TrainedModel(booster=booster, meta=meta)
