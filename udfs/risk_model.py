"""TEMPORARY planning stub (integrator): replaced by the model branch's module."""

from __future__ import annotations

import json


def _score(models_path, version, threshold, params, risk_score, amount, channel, category, currency, hour, behaviour):  # noqa
    import pandas as pd

    return pd.Series([json.dumps({"score": 0.0, "model_version": 0, "reasons": []})] * len(amount))


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "risk_model_udf":
        from pyflink.table import DataTypes
        from pyflink.table.udf import udf

        fn = udf(
            _score,
            input_types=[
                DataTypes.STRING(), DataTypes.INT(), DataTypes.DOUBLE(), DataTypes.STRING(), DataTypes.DOUBLE(),
                DataTypes.DOUBLE(), DataTypes.STRING(), DataTypes.STRING(), DataTypes.STRING(),
                DataTypes.BIGINT(), DataTypes.STRING(),
            ],
            result_type=DataTypes.STRING(),
            func_type="pandas",
            deterministic=False,
        )
        globals()["risk_model_udf"] = fn
        return fn
    raise AttributeError(name)
