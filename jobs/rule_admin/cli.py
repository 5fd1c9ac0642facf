"""`fraudctl rules list | set | history`: the running job's rule parameters, changed live.

A change is a new version in the compacted topic fraud_rules, which the running job reads
(udfs/rule_parameters.py): it applies to transactions from one second after the command, with
no restart and no state lost. Window lengths, slides and pattern shapes are structural: change
them in the config file and run `fraudctl upgrade`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from confluent_kafka import KafkaException

from config.rule_changes import RuleChangeError
from fraudctl.cli_common import (
    ConfigOption,
    JsonOption,
    console,
    fail,
    print_json,
    print_table,
    settings,
)

rules_app = typer.Typer(
    help="Show and change the rules' run-time parameters of the running job (no redeploy).",
    no_args_is_help=True,
)


def _kafka_failure(exc: Exception) -> None:
    fail(f"{type(exc).__name__}: {exc}")


@rules_app.command("list")
def list_rules(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Every rule's parameters in force now: the version written (0 = the config file) and
    the version the running job has applied, one line per parameter."""
    from config.rules import rule_names
    from jobs.rule_admin.versions import applied_versions, current_history

    s = settings(config)
    try:
        history = current_history(s)
    except (RuntimeError, TimeoutError, KafkaException) as exc:
        _kafka_failure(exc)
    applied = applied_versions(s) or {}
    rules: list[dict[str, Any]] = []
    for rule in rule_names():
        v = history.latest(rule)
        rules.append(
            {
                "rule": rule.upper(),
                "version": v.version,
                "applied": applied.get(rule),
                "parameters": v.params,
                "effective_at": v.effective_at or "config",
                "changed_by": v.changed_by or "",
            }
        )
    if json_out:
        print_json(rules)
        return
    rows = []
    for r in rules:
        applied_text = "-" if r["applied"] is None or r["applied"] < 0 else f"v{r['applied']}"
        for i, (key, value) in enumerate(r["parameters"].items()):
            first = i == 0
            rows.append(
                {
                    "rule": r["rule"] if first else "",
                    "written": f"v{r['version']}" if first else "",
                    "applied": applied_text if first else "",
                    "parameter": key,
                    "value": value,
                }
            )
    print_table(
        rows,
        ["rule", "written", "applied", "parameter", "value"],
        f"rule parameters ({s.kafka.topics.rules}; applied: by the running job "
        f"{s.flink.job_name}, - when none runs)",
    )


def _parse_assignments(assignments: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{item!r} is not KEY=VALUE (for example max_count=2)", code=2)
        out[key.strip()] = value.strip()
    return out


@rules_app.command("set")
def set_rule(
    rule: Annotated[str, typer.Argument(help="The rule, e.g. velocity (or VELOCITY).")],
    assignments: Annotated[
        list[str], typer.Argument(help="KEY=VALUE pairs, e.g. max_count=2 enabled=false.")
    ],
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change run-time parameters of one rule in the running job.

    Each value is validated like the config file (nothing is written when one is refused); the
    change is kept in MongoDB rule_changes with your OS user, and alerts fired under it carry
    its rule_version.
    """
    from jobs.rule_admin.versions import RuleChangeConflict, publish_change

    s = settings(config)
    changes = _parse_assignments(assignments)
    try:
        old, new = publish_change(s, rule.lower(), changes)
    except RuleChangeConflict as exc:
        fail(str(exc), code=3)
    except RuleChangeError as exc:
        fail(str(exc), code=2)
    except (RuntimeError, TimeoutError, KafkaException) as exc:
        _kafka_failure(exc)
    result = {
        "rule": new.rule.upper(),
        "version": new.version,
        "effective_at": new.effective_at,
        "effective_at_ms": new.effective_at_ms,
        "changed_by": new.changed_by,
        "old": old.params,
        "new": new.params,
    }
    if json_out:
        print_json(result)
        return
    changed = {k: (old.params.get(k), v) for k, v in new.params.items() if old.params.get(k) != v}
    what = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items()) or "no value changed"
    console.print(
        f"{result['rule']} version {new.version} ({what}) applies to transactions from "
        f"{new.effective_at}"
    )


@rules_app.command("history")
def history(
    rule: Annotated[str | None, typer.Argument(help="Only this rule.")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every change made with `rules set` (from MongoDB rule_changes), oldest first."""
    from pymongo.errors import PyMongoError

    from jobs.rule_admin.versions import change_log

    s = settings(config)
    try:
        rows = change_log(s, rule.lower() if rule else None)
    except PyMongoError as exc:
        fail(f"MongoDB at {s.mongo.uri.split('@')[-1]} is unreachable: {exc}")
    if json_out:
        print_json(rows)
        return
    for row in rows:
        row["rule"] = row["rule"].upper()
        row["change"] = ", ".join(
            f"{k}: {row['old'].get(k)} -> {v}"
            for k, v in row["new"].items()
            if row["old"].get(k) != v
        )
    print_table(
        rows,
        ["rule", "version", "change", "changed_by", "changed_at", "effective_at"],
        "rule changes",
    )


def register(app: typer.Typer) -> None:
    """Add `rules ...` to `fraudctl`."""
    app.add_typer(rules_app, name="rules")
