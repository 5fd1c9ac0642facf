"""The metric names a PromQL expression reads, and the dashboard's expressions: what the tests
check against the names docs/contract.md lists and a live Prometheus holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from config.stack import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "monitoring" / "grafana" / "dashboards" / "fraud-detection.json"

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
# label lists of aggregations and vector matching: `by (a, b)`, `on(a)`, `group_left(b)`
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
    }
)


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects (identifiers that are not functions, keywords, labels
    or Grafana's `$variables`)."""
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub("{}", text)
    text = _RANGES.sub("[]", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = re.sub(r"\$\w+", " ", text)
    names = set()
    for m in _IDENT.finditer(text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group().lower() in _KEYWORDS:
            continue
        if m.start() > 0 and (text[m.start() - 1].isdigit() or text[m.start() - 1] == "."):
            continue  # a number's exponent or unit
        names.add(m.group())
    return names


def dashboard_expressions(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every query of every panel, and the template
    variables' queries."""
    board = json.loads(path.read_text())
    out = [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]
    for var in board.get("templating", {}).get("list", []):
        query = var.get("query", {})
        query = query.get("query", "") if isinstance(query, dict) else query
        found = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
        if found:
            out.append((f"variable {var['name']}", found.group(1)))
    return out


def instant(expr: str) -> str:
    """A dashboard expression as an instant query: Grafana's variables filled in."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace('"$job_name"', '".*"')
    )
