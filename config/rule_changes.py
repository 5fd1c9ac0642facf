"""Run-time rule parameters: the config's values (version 0) and validated changes to them.

Which parameters of a rule may change in a running job is declared by its config model
(config/rules.py: its `RunTime` fields); a change is validated by that model, so `fraudctl
rules set` refuses exactly what the config file would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from config.rules import Rules, rule_names, runtime_parameters, structural_settings


class RuleChangeError(ValueError):
    """A change is refused; the message names the rule, the key and what is allowed."""


def initial_parameters(rules: Rules) -> dict[str, dict[str, Any]]:
    """Every rule's run-time parameters as configured (JSON values): version 0."""
    return {
        rule: getattr(rules, rule).model_dump(mode="json", include=set(runtime_parameters(rule)))
        for rule in rule_names()
    }


def changed_parameters(
    rules: Rules, rule: str, current: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    """`current` (the rule's parameters in force) with `changes` applied, validated like the
    config; RuleChangeError when the rule or a key is unknown, a key is structural, or a value
    is refused (nothing is applied then)."""
    if rule not in rule_names():
        raise RuleChangeError(f"unknown rule {rule!r}; rules: {', '.join(rule_names())}")
    tunable = runtime_parameters(rule)
    for key in changes:
        if key in tunable:
            continue
        if key in structural_settings(rule):
            raise RuleChangeError(
                f"{rule}.{key} is structural (it shapes the job's windows, patterns or scoring):"
                " change it in the config file and run `fraudctl upgrade`"
            )
        raise RuleChangeError(
            f"{rule} has no parameter {key!r}; run-time parameters: {', '.join(tunable)}"
        )
    if not changes:
        raise RuleChangeError(f"no change given; {rule}: {', '.join(tunable)}")
    model = type(getattr(rules, rule))
    base = getattr(rules, rule).model_dump()
    try:
        checked = model.model_validate({**base, **current, **changes})
    except ValidationError as exc:
        problems = "; ".join(
            f"{rule}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise RuleChangeError(f"refused, nothing written: {problems}") from None
    return checked.model_dump(mode="json", include=set(tunable))
