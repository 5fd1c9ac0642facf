"""The card-token UDF wrapper: same result as the pure function, key from a file or the env."""

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
    monkeypatch.delenv("FRAUD_CARD_TOKEN_SECRET_FILE", raising=False)
    with pytest.raises(RuntimeError, match="FRAUD_CARD_TOKEN_SECRET_FILE nor FRAUD_CARD_TOKEN"):
        module.card_token_udf._func.open(None)


def test_the_udf_reads_its_key_from_the_file_its_environment_names(monkeypatch, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("key-from-file\n")
    monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET_FILE", str(key_file))
    monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET", "key-from-env")
    fn = module.card_token_udf._func
    fn.open(None)
    out = fn.eval(pd.Series(["4111111111111111"]))
    assert out.iloc[0] == module.card_token("4111111111111111", "key-from-file")


@pytest.mark.parametrize(("content", "reason"), [(None, "cannot read"), ("\n", "is empty")])
def test_a_key_file_it_cannot_use_is_named_in_the_error(monkeypatch, tmp_path, content, reason):
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET_FILE", str(key_file))
    with pytest.raises(RuntimeError, match=f"{key_file}.*{reason}"):
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
