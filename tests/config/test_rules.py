"""One declaration per rule (config/rules.py): everything that lists rules, their run-time
parameters or their inputs agrees with the rules' config models."""

from __future__ import annotations

import re

import pytest

from config import load_settings
from config.rule_changes import RuleChangeError, changed_parameters, initial_parameters
from config.rule_docs import DOC_TABLES, with_table
from config.rules import (
    RuleInput,
    Rules,
    rule_models,
    rule_names,
    rules_reading,
    runtime_parameters,
    structural_settings,
)
from config.stack import PROJECT_ROOT
from jobs.sql.render import render_script
from udfs.rule_parameters import UDF_RULES, columns

INPUT_VIEWS = {str(i) for i in RuleInput}


@pytest.mark.parametrize(("doc", "kind"), DOC_TABLES.items())
def test_the_docs_tables_are_the_declarations(doc, kind):
    text = (PROJECT_ROOT / doc).read_text()
    assert with_table(text, kind) == text, (
        f"{doc}'s {kind} table disagrees with config/rules.py: "
        "run `python -m config.rule_docs --write`"
    )


def _candidates(script: str, rule: str) -> str:
    start = script.index(f"CREATE TEMPORARY VIEW `{rule}_candidates`")
    return script[start : script.index(";", start)]


@pytest.mark.parametrize("rule", rule_names())
def test_each_rule_reads_the_view_it_declares_and_no_other(rule):
    script = render_script(load_settings(), python_files="")
    read = set(re.findall(r"\b(?:FROM|JOIN|TABLE)\s+`?(\w+)`?", _candidates(script, rule)))
    declared = str(rule_models()[rule].reads)
    assert read & INPUT_VIEWS == {declared}


@pytest.mark.parametrize("rule", rule_names())
def test_every_run_time_parameter_of_a_rule_reaches_the_job_typed_as_declared(rule):
    """The Python operator that serves a rule's input returns each of the rule's run-time
    parameters, with the SQL type its declaration gives."""
    model = rule_models()[rule]
    udf = (
        "per_transaction_rule_parameters_udf"
        if model.reads == RuleInput.ARRIVING
        else "counted_rule_parameters_udf"
    )
    fields = columns(UDF_RULES[udf])
    for key, sql_type in runtime_parameters(rule).items():
        assert fields[f"{rule}_{key}"] == sql_type
    assert fields[f"{rule}_version"] == "INT"


@pytest.mark.parametrize("rule", [r for r in rule_names() if "window" in structural_settings(r)])
def test_a_window_rule_unpacks_its_parameters_with_their_declared_types(rule):
    evidence = _candidates(render_script(load_settings(), python_files=""), rule)
    for key, sql_type in runtime_parameters(rule).items():
        assert f"AS {sql_type}) AS `{key}`" in evidence, key


@pytest.mark.parametrize("rule", rule_names())
def test_rules_set_takes_the_run_time_parameters_and_refuses_the_structural_ones(rule):
    rules = Rules()
    current = initial_parameters(rules)[rule]
    for key in runtime_parameters(rule):
        assert changed_parameters(rules, rule, current, {key: current[key]}) == current
    for key in structural_settings(rule):
        with pytest.raises(RuleChangeError, match="structural"):
            changed_parameters(rules, rule, current, {key: "1"})


def test_the_views_the_job_flattens_parameters_for_are_the_counting_rules():
    script = render_script(load_settings(), python_files="")
    unique = script[script.index("CREATE TEMPORARY VIEW unique_transactions") :]
    unique = unique[: unique.index(";")]
    # each rule's `<rule>_version` (RISK_SCORE's `model_version` is one of its parameters)
    flattened = set(re.findall(r"rule_params\.`(\w+?)_version`", unique)) - {"risk_score_model"}
    assert flattened == set(rules_reading(RuleInput.ON_TIME, RuleInput.CARD_LEGS))
