"""Every rule's given/expect cases (sql_templates/rules/<rule>.cases.yaml), run in-process by the
PyFlink harness of tests/rules/harness.py: one local job for every rule, no Kafka, no cluster."""

from __future__ import annotations

import pytest

from config import load_settings
from config.rules import rule_names
from tests.rules.harness import Case, Outcome, all_rows, load_cases, mismatches, run_rules

CASES = [(rule, k, case) for rule in rule_names() for k, case in enumerate(load_cases(rule))]


def case_settings():  # type: ignore[no-untyped-def]
    """The config the cases are written for: RISK_SCORE with model version 0, whose score is
    each row's `risk_score` (the trained default model is measured in docs/benchmarks.md)."""
    return load_settings(job={"rules": {"risk_score": {"model_version": 0}}})


@pytest.fixture(scope="session")
def outcomes() -> dict[str, list[Outcome]]:
    """The outcome of every case of every rule, from one harness run."""
    return run_rules(case_settings(), {rule: load_cases(rule) for rule in rule_names()})


@pytest.mark.parametrize(
    ("rule", "index", "case"), CASES, ids=[f"{r}: {c.name}" for r, _, c in CASES]
)
def test_rule_case(rule: str, index: int, case: Case, outcomes) -> None:
    problems = mismatches(case, outcomes[rule][index])
    assert not problems, f"{rule} / {case.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("rule", [r for r in rule_names() if r != "device_sharing"])
def test_card_alerts_carry_the_cards_user_and_last_digits(rule: str, outcomes) -> None:
    """Every card alert names the user and last four digits its transactions were given (the
    window rules carry them in packed accumulators, not plain columns)."""
    rows = all_rows(case_settings(), {r: load_cases(r) for r in rule_names()})
    given = {(r["card_token"], r["user_id"], r["card_last4"]) for r in rows}
    alerts = [a for outcome in outcomes[rule] for a in outcome.alerts]
    assert alerts
    for alert in alerts:
        assert (alert["card_token"], alert["user_id"], alert["card_last4"]) in given
