"""The docs' tables of rules, derived from the rules' declarations (config/rules.py).

docs/contract.md (the rules table) and docs/configuration.md (each rule's settings) hold their
table between markers; `python -m config.rule_docs --write` rewrites them, and
tests/config/test_rules.py fails when a doc disagrees with the declarations.
"""

from __future__ import annotations

from typing import Any

from config.rules import rule_models, rule_names, runtime_parameters, structural_settings

# docs/contract.md and docs/configuration.md hold each between these markers;
# `python -m config.rule_docs --write` rewrites them, tests/config/test_rules.py checks them.
DOC_TABLES = {
    "docs/contract.md": "rules",
    "docs/configuration.md": "rule settings",
}


def _shown(value: Any) -> str:
    """A default as the docs show it: 500.00, 3, 5 min, 0.8, [0, 5]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def _defaults(rule: str) -> dict[str, Any]:
    return rule_models()[rule]().model_dump()


def definition(rule: str) -> str:
    """The rule's definition with its defaults filled in."""
    defaults = {k: _shown(v) for k, v in _defaults(rule).items()}
    return rule_models()[rule].definition.format(**defaults)


def rules_table() -> str:
    """The rules table of docs/contract.md."""
    lines = ["| rule | entity | definition | severity |", "|---|---|---|---|"]
    for name, model in rule_models().items():
        lines.append(
            f"| `{model.contract_name()}` | {model.entity} | {definition(name)} | "
            f"{model.severity_text()} |"
        )
    return "\n".join(lines)


def rule_settings_table() -> str:
    """The rules' rows of docs/configuration.md: each rule's settings and defaults, those the
    running job takes from `fraudctl rules set` apart from those that reshape it."""
    lines = [
        "| key | run-time (`fraudctl rules set`) | structural (`fraudctl upgrade`) |",
        "|---|---|---|",
    ]
    for name in rule_names():
        defaults = _defaults(name)
        live = ", ".join(f"`{k}: {_shown(defaults[k])}`" for k in runtime_parameters(name))
        shaped = ", ".join(f"`{k}: {_shown(defaults[k])}`" for k in structural_settings(name))
        lines.append(f"| `job.rules.{name}` | {live} | {shaped or '-'} |")
    return "\n".join(lines)


def doc_table(kind: str) -> str:
    return {"rules": rules_table, "rule settings": rule_settings_table}[kind]()


def markers(kind: str) -> tuple[str, str]:
    return (
        f"<!-- {kind}: generated from config/rules.py by `python -m config.rule_docs --write` -->",
        f"<!-- end of {kind} -->",
    )


def with_table(text: str, kind: str) -> str:
    """`text` (a doc) with the table between its `kind` markers regenerated; ValueError when
    the markers are missing."""
    start, end = markers(kind)
    if start not in text or end not in text:
        raise ValueError(f"no {start!r} ... {end!r} section")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{doc_table(kind)}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    """`python -m config.rule_docs [--write]`: print the docs' rule tables, or rewrite them in the
    docs."""
    import sys
    from pathlib import Path

    from config.stack import PROJECT_ROOT

    args = sys.argv[1:] if argv is None else argv
    for doc, kind in DOC_TABLES.items():
        if "--write" in args:
            path = Path(PROJECT_ROOT) / doc
            path.write_text(with_table(path.read_text(), kind))
            print(f"rewrote the {kind} table in {doc}")
        else:
            print(f"{doc}:\n{doc_table(kind)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
