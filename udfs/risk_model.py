"""The risk score with a learned model: the promoted version of the model store, or the heuristic.

A model version is an int, the rule parameter `risk_score.model_version` in force at the
transaction's event time (`fraudctl model promote` changes it like any rule change):

- version 0 is the heuristic of udfs/risk_score.py (the weighted mean of six features), always
  there: the fallback;
- a trained version V is the LightGBM model `<models_path>/<V>/model.txt` (jobs/model/store.py
  writes it, with its `meta.json`), read by the features of udfs/behaviour_features.py.

Each row's result is compact JSON text: `{"score": 0.93, "model_version": 1, "reasons":
["amount_ratio", "new_device", "km_from_usual"]}`. `reasons` are the (at most) three features that
raised the score most (a model: its SHAP contributions, LightGBM `pred_contrib`; version 0:
weight x feature), given only for rows whose score is at or above the threshold (an alert), so
the costly contributions are computed for alerts only; [] otherwise. A missing score (no
amount, version 0) is null.

Models are loaded on first use and kept per version, so a newly promoted version is picked up
without a restart and the old one is not read again. A model that is missing or does not load
(or whose features are not MODEL_FEATURES) never fails the job: it is logged once, its rows
are scored by version 0 and report model_version 0, and loading is tried again after
`RETRY_S` (a model copied to a worker late is picked up). lightgbm is imported only when a
trained version is used: the job's Python workers import this module at start.

SQL signature (sql_templates/functions/udfs.sql.j2), `SQL_ARGUMENTS`:
`risk_model(model_version INT, models_path STRING, threshold DOUBLE, heuristic_params STRING,
risk_score DOUBLE, amount DOUBLE, channel STRING, merchant_category STRING, currency STRING,
hour BIGINT, behaviour STRING) -> STRING`; `behaviour` is the card_behaviour aggregate's JSON
text (docs/contract.md "Behaviour features"), version 0's score the row's `risk_score`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from udfs.behaviour_features import BEHAVIOUR_FIELDS, MODEL_FEATURES, SAMPLE_ROW, feature_matrix
from udfs.risk_score import RiskParams, feature_columns, params_from_json, risk_scores

log = logging.getLogger(__name__)

HEURISTIC = 0  # the version that needs no model file
MODEL_FILE = "model.txt"
META_FILE = "meta.json"
REASONS = 3  # features named per alert
RETRY_S = 60.0  # a model that failed to load is tried again after this long


class ModelLoadError(ValueError):
    """A model version cannot be used; the message says which and why."""


def resolve_models_path(models_path: str | Path) -> Path:
    """The model store's directory: `models_path` as given when absolute, else under the
    project's directory (config `scoring.models_path` is relative to it)."""
    path = Path(models_path).expanduser()
    if path.is_absolute():
        return path
    from config.stack import PROJECT_ROOT

    return PROJECT_ROOT / path


def model_file(models_path: str | Path, version: int) -> Path:
    return resolve_models_path(models_path) / str(int(version)) / MODEL_FILE


def load_model(models_path: str | Path, version: int) -> Any:
    """The LightGBM Booster of a trained version; ModelLoadError when its file is missing, does
    not load, or its features are not MODEL_FEATURES."""
    path = model_file(models_path, version)
    if int(version) <= HEURISTIC:
        raise ModelLoadError(f"model {version}: version 0 is the heuristic, it has no model file")
    if not path.is_file():
        raise ModelLoadError(f"model {version}: {path} does not exist")
    import lightgbm

    try:
        booster = lightgbm.Booster(model_file=str(path))
    except Exception as exc:  # LightGBMError, or an OSError reading it
        raise ModelLoadError(f"model {version}: {path} does not load: {exc}") from None
    names = tuple(booster.feature_name())
    if names != MODEL_FEATURES:
        raise ModelLoadError(
            f"model {version}: its features {list(names)} are not the job's "
            f"MODEL_FEATURES {list(MODEL_FEATURES)} (udfs/behaviour_features.py)"
        )
    return booster


def check_model(booster: Any) -> float:
    """Score SAMPLE_ROW with `booster`; ModelLoadError unless it gives a probability."""
    try:
        score = float(booster.predict(feature_matrix({k: [v] for k, v in SAMPLE_ROW.items()}))[0])
    except Exception as exc:
        raise ModelLoadError(f"scoring a sample row failed: {exc}") from None
    if not 0.0 <= score <= 1.0:
        raise ModelLoadError(f"scoring a sample row gave {score}, not a probability")
    return score


class ModelCache:
    """Boosters per (store, version), loaded on first use; a failure is logged once and tried
    again after `retry_s`."""

    def __init__(self, retry_s: float = RETRY_S) -> None:
        self.retry_s = retry_s
        self._models: dict[tuple[str, int], Any] = {}
        self._failed: dict[tuple[str, int], float] = {}  # -> monotonic time of the failure
        self._logged: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def get(self, models_path: str | Path, version: int) -> Any | None:
        """The Booster of `version`, or None when it cannot be used (its rows: version 0)."""
        key = (str(resolve_models_path(models_path)), int(version))
        with self._lock:
            if key in self._models:
                return self._models[key]
            failed_at = self._failed.get(key)
            if failed_at is not None and time.monotonic() - failed_at < self.retry_s:
                return None
            try:
                booster = load_model(models_path, version)
                check_model(booster)
            except ModelLoadError as exc:
                self._failed[key] = time.monotonic()
                if key not in self._logged:
                    self._logged.add(key)
                    log.error(
                        "%s; scoring its rows with version 0 (the heuristic), trying again "
                        "every %g s",
                        exc,
                        self.retry_s,
                    )
                return None
            self._failed.pop(key, None)
            if key in self._logged:
                log.warning("model %s loaded from %s after all", version, key[0])
            self._models[key] = booster
            return booster

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._failed.clear()
            self._logged.clear()


_CACHE = ModelCache()


@dataclass(frozen=True)
class Scores:
    """A batch's results: per row the score (NaN: none), the version that scored it and its
    reasons ([] below the threshold)."""

    score: np.ndarray
    model_version: np.ndarray
    reasons: list[list[str]]

    def json_rows(self) -> list[str]:
        """Each row as the UDF returns it: compact JSON text (formatted, not json.dumps'd: a
        row is a float, an int and a few names, and the encoder cost more than the model)."""
        out = []
        for s, v, r in zip(
            self.score.tolist(), self.model_version.tolist(), self.reasons, strict=True
        ):
            score = "null" if math.isnan(s) else repr(float(s))
            names = ",".join(f'"{name}"' for name in r)
            out.append(f'{{"score":{score},"model_version":{int(v)},"reasons":[{names}]}}')
        return out


def top_reasons(
    contributions: np.ndarray, names: Sequence[str], n: int = REASONS
) -> list[list[str]]:
    """Per row of `contributions` (rows x features), the names of the (at most) `n` features
    with the largest positive contributions, largest first (ties: feature order)."""
    out = []
    for row in np.asarray(contributions, dtype=float):
        order = np.argsort(-row, kind="stable")[:n]
        out.append([names[i] for i in order if row[i] > 0])
    return out


def _broadcast(value: Any, n: int, dtype: Any, missing: Any) -> np.ndarray:
    """A scalar or a sequence (NULLs -> `missing`) as an array of `n` values."""
    import pandas as pd

    if np.ndim(value) == 0:
        value = [value] * n
    series = pd.to_numeric(pd.Series(value, dtype="object"), errors="coerce")
    return series.fillna(missing).to_numpy(dtype=dtype)


def _heuristic(
    rows: Mapping[str, Any], idx: np.ndarray, threshold: np.ndarray, params: RiskParams
) -> tuple[np.ndarray, list[list[str]]]:
    """Version 0 for rows `idx`: udfs/risk_score.py's score, and weight x feature as reasons."""

    def take(name: str) -> list[Any]:
        values = list(rows[name])
        return [values[i] for i in idx]

    args = [take(f) for f in ("amount", "channel", "merchant_category", "currency", "hour")]
    if "risk_score" in rows:  # the job's own weighted sum of the row (scored_transactions)
        scores = _broadcast(take("risk_score"), len(idx), float, np.nan)
    else:
        scores = risk_scores(*args, params)
    reasons: list[list[str]] = [[] for _ in idx]
    with np.errstate(invalid="ignore"):  # NaN scores (no amount) give no reasons
        alert = scores >= threshold[idx]
    if alert.any():
        columns = feature_columns(*[[a[i] for i in np.flatnonzero(alert)] for a in args], params)
        names = list(params.weights)
        weighted = np.column_stack([params.weights[k] * columns[k] for k in names])
        for i, r in zip(np.flatnonzero(alert), top_reasons(weighted, names), strict=True):
            reasons[i] = r
    return scores, reasons


def score_batch(
    rows: Mapping[str, Any],
    model_version: int | Sequence[int | None],
    threshold: float | Sequence[float | None],
    heuristic_params: str | RiskParams | None,
    models_path: str | Path,
    cache: ModelCache | None = None,
) -> Scores:
    """Score a batch of rows (column-wise: the fields of udfs/behaviour_features.py, a pandas
    DataFrame or a mapping of field -> values) with each row's model version (0 or NULL: the
    heuristic) and threshold (reasons at or above it). Never raises for a model that cannot be
    used: its rows are scored by version 0 (see the module docstring)."""
    cache = cache or _CACHE
    n = len(rows["amount"])
    versions = _broadcast(model_version, n, np.int64, HEURISTIC)
    limits = _broadcast(threshold, n, float, np.nan)
    if isinstance(heuristic_params, str):
        params = params_from_json(heuristic_params)
    else:
        params = heuristic_params or RiskParams()
    score = np.full(n, np.nan)
    used = np.zeros(n, dtype=np.int64)
    reasons: list[list[str]] = [[] for _ in range(n)]
    heuristic = versions <= HEURISTIC
    matrix = None
    for version in sorted(set(versions[~heuristic].tolist())):
        idx = np.flatnonzero(versions == version)
        booster = cache.get(models_path, version)
        if booster is None:
            heuristic[idx] = True
            continue
        if matrix is None:
            matrix = feature_matrix(rows, params)
        x = matrix[idx]
        p = booster.predict(x)
        score[idx], used[idx] = p, version
        with np.errstate(invalid="ignore"):
            alert = p >= limits[idx]
        if alert.any():
            contrib = booster.predict(x[alert], pred_contrib=True)[:, : len(MODEL_FEATURES)]
            for i, r in zip(idx[alert], top_reasons(contrib, MODEL_FEATURES), strict=True):
                reasons[i] = r
    if heuristic.any():
        idx = np.flatnonzero(heuristic)
        s, r = _heuristic(rows, idx, limits, params)
        score[idx] = s
        for i, one in zip(idx, r, strict=True):
            reasons[i] = one
    return Scores(score=score, model_version=used, reasons=reasons)


# the UDF's arguments and their SQL types, in order: four settings, then a row's fields: the
# job's weighted sum (`risk_score`, version 0's score), the transaction's fields and its
# behaviour features as one JSON text (sql_templates/rules/risk_score.sql.j2 says why)
SQL_ARGUMENTS: tuple[tuple[str, str], ...] = (
    # a column first: PyFlink checks a pandas UDF's result length against its first argument's
    ("model_version", "INT"),
    ("models_path", "STRING"),
    ("threshold", "DOUBLE"),
    ("heuristic_params", "STRING"),
    ("risk_score", "DOUBLE"),
    ("amount", "DOUBLE"),
    ("channel", "STRING"),
    ("merchant_category", "STRING"),
    ("currency", "STRING"),
    ("hour", "BIGINT"),
    ("behaviour", "STRING"),
)
ROW_FIELDS = tuple(name for name, _ in SQL_ARGUMENTS[4:-1])


def behaviour_columns(texts: Sequence[str | None]) -> dict[str, list[Any]]:
    """The behaviour features' JSON texts (one per row, the job's card_behaviour) as one
    column per feature of BEHAVIOUR_FIELDS (a missing text or feature: None)."""
    # one parse for the whole batch: a call of json.loads per row cost more than the model
    parsed = json.loads("[" + ",".join(t or "{}" for t in texts) + "]")
    return {name: [p.get(name) for p in parsed] for name in BEHAVIOUR_FIELDS}


def _udf_batch(model_version, models_path, threshold, heuristic_params, *columns):  # type: ignore[no-untyped-def]
    """Vectorized UDF body: pandas Series in (the literals arrive as Series too), a Series of
    JSON text out."""
    import pandas as pd

    if len(model_version) == 0:
        return pd.Series([], dtype="object")
    path = models_path if isinstance(models_path, str) else models_path.iloc[0]
    params = heuristic_params if isinstance(heuristic_params, str) else heuristic_params.iloc[0]
    *fields, behaviour = columns
    rows: dict[str, Any] = dict(zip(ROW_FIELDS, fields, strict=True))
    rows.update(behaviour_columns(behaviour.tolist()))
    scores = score_batch(rows, model_version.tolist(), threshold.tolist(), params, path)
    return pd.Series(scores.json_rows(), dtype="object")


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """`risk_model_udf`, built on first access so plain imports do not load PyFlink; its SQL
    signature is SQL_ARGUMENTS -> STRING."""
    if name == "risk_model_udf":
        from pyflink.table import DataTypes
        from pyflink.table.udf import udf

        fn = udf(
            _udf_batch,
            input_types=[getattr(DataTypes, t)() for _, t in SQL_ARGUMENTS],
            result_type=DataTypes.STRING(),
            func_type="pandas",
            # declared non-deterministic (its result also follows from the model files), so
            # that the planner keeps one call per row: declared deterministic, it would inline
            # the call into each JSON_VALUE reading its result
            deterministic=False,
        )
        globals()["risk_model_udf"] = fn
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
