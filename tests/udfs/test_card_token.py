"""The card-token UDF wrapper: same result as the pure function, key from the environment."""

from __future__ import annotations

import pandas as pd
import pytest

from udfs import card_token as module


def test_the_udf_matches_the_pure_function(monkeypatch):
    monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET", "test-key")
    fn = module.card_token_udf._func
    fn.open(None)
    out = fn.eval(pd.Series(["4111111111111111", None]))
    assert out.iloc[0] == module.card_token("4111111111111111", "test-key")
    assert out.iloc[1] is None


def test_the_udf_refuses_to_run_without_a_key(monkeypatch):
    monkeypatch.delenv("FRAUD_CARD_TOKEN_SECRET", raising=False)
    with pytest.raises(RuntimeError, match="FRAUD_CARD_TOKEN_SECRET"):
        module.card_token_udf._func.open(None)


def test_last4_udf():
    fn = module.card_last4_udf._func
    assert fn.eval(pd.Series(["4111 1111 1111 1234", None])).tolist() == ["1234", None]


def test_the_wrappers_return_strings():
    assert str(module.card_token_udf._result_type) == "VARCHAR"
    assert str(module.card_last4_udf._result_type) == "VARCHAR"


def test_importing_the_pure_functions_does_not_import_pyflink():
    import subprocess
    import sys

    code = "import sys, udfs.card_token, udfs.risk_score; print('pyflink' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
