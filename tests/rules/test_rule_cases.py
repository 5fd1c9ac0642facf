"""Every rule's given/expect cases (sql_templates/rules/<rule>.cases.yaml), run in-process by the
PyFlink harness of jobs/rule_cases.py: one local job per rule, no Kafka, no cluster."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config import load_settings
from config.job import rule_names
from jobs.rule_cases import Case, Outcome, load_cases, mismatches, run_rule

CASES = [(rule, k, case) for rule in rule_names() for k, case in enumerate(load_cases(rule))]


@pytest.fixture(scope="session")
def outcomes() -> Callable[[str], list[Outcome]]:
    """The outcome of every case of a rule, from one harness run per rule (cached)."""
    settings = load_settings()
    runs: dict[str, list[Outcome]] = {}

    def of(rule: str) -> list[Outcome]:
        if rule not in runs:
            runs[rule] = run_rule(settings, rule, load_cases(rule))
        return runs[rule]

    return of


@pytest.mark.parametrize(
    ("rule", "index", "case"), CASES, ids=[f"{r}: {c.name}" for r, _, c in CASES]
)
def test_rule_case(rule: str, index: int, case: Case, outcomes) -> None:
    problems = mismatches(case, outcomes(rule)[index])
    assert not problems, f"{rule} / {case.name}:\n  " + "\n  ".join(problems)
