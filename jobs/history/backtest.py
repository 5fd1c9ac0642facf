"""`fraudctl backtest`: a rule change tried on history with the job's own rule SQL.

The lake's transactions of a time range, in event-time order, are replayed through the job's
rule templates (jobs/history/replay.py) twice: with the rules' parameters as they were at each event
time (the versions of fraud_rules, as the live job applied them), and with the candidate
change in force over the whole range. The transactions carry the score and the lateness the
live job gave them, so with no change the replay raises exactly the live job's alert ids. The
two runs are compared per rule, and scored against labels (the producer's truth file) when
given.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import Settings
from config.rule_changes import RuleChangeError, changed_parameters, initial_parameters
from config.rules import rule_names
from fraudctl.evaluate import Truth, evaluate
from udfs.rule_parameters import ParameterHistory

# what `backtest --json` gives of each alert the candidate run raised
ALERT_FIELDS = (
    "alert_id",
    "rule",
    "entity_id",
    "user_id",
    "transaction_ids",
    "severity",
    "amount",
    "event_time",
    "rule_version",
)


@dataclass(frozen=True)
class Change:
    """`--set RULE.KEY=VALUE`s of one rule, validated as `fraudctl rules set` validates."""

    rule: str
    changes: dict[str, Any]


def parse_changes(settings: Settings, assignments: list[str]) -> list[Change]:
    """`RULE.KEY=VALUE` strings -> one Change per rule; RuleChangeError names what is wrong."""
    by_rule: dict[str, dict[str, str]] = {}
    for item in assignments:
        target, sep, value = item.partition("=")
        rule, dot, key = target.strip().lower().partition(".")
        if not sep or not dot or not rule or not key:
            raise RuleChangeError(f"{item!r} is not RULE.KEY=VALUE (e.g. velocity.max_count=2)")
        by_rule.setdefault(rule, {})[key] = value.strip()
    rules = settings.job.rules
    out = []
    for rule, changes in by_rule.items():
        current = initial_parameters(rules)[rule] if rule in rule_names() else {}
        checked = changed_parameters(rules, rule, current, changes)
        out.append(Change(rule, {k: checked[k] for k in changes}))
    return out


@dataclass
class RuleSummary:
    rule: str
    alerts: int = 0
    cards: int = 0  # distinct entities the alerts are about (cards, or devices)
    amount: float = 0.0
    precision: float | None = None
    recall: float | None = None


@dataclass
class Backtest:
    """What a backtest found: per rule the current and candidate runs, and their alerts."""

    start: dt.datetime
    end: dt.datetime
    transactions: int
    changes: list[Change]
    current: list[dict[str, Any]]
    candidate: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)

    def rules(self, truth: Truth | None = None) -> list[dict[str, Any]]:
        """Per rule: both runs' alerts, cards and amount (and, against `truth`, precision and
        recall), and the alert ids the change adds and removes."""
        evaluated: dict[str, dict[str, dict[str, Any]]] = {}
        if truth is not None:
            for name, alerts in (("current", self.current), ("candidate", self.candidate)):
                evaluated[name] = {row["rule"]: row for row in evaluate(alerts, truth)["by_rule"]}
        out = []
        for rule in sorted({a["rule"] for a in self.current + self.candidate}):
            now = [a for a in self.current if a["rule"] == rule]
            then = [a for a in self.candidate if a["rule"] == rule]
            now_ids, then_ids = {a["alert_id"] for a in now}, {a["alert_id"] for a in then}
            runs = {}
            for name, alerts in (("current", now), ("candidate", then)):
                score = evaluated.get(name, {}).get(rule, {})
                runs[name] = RuleSummary(
                    rule=rule,
                    alerts=len(alerts),
                    cards=len({a["entity_id"] for a in alerts}),
                    amount=round(sum(a["amount"] or 0.0 for a in alerts), 2),
                    precision=score.get("precision"),
                    recall=score.get("recall"),
                ).__dict__
            out.append(
                {
                    "rule": rule,
                    "current": runs["current"],
                    "candidate": runs["candidate"],
                    "added": len(then_ids - now_ids),
                    "removed": len(now_ids - then_ids),
                }
            )
        return out

    def document(self, truth: Truth | None = None) -> dict[str, Any]:
        """`backtest --json`: the range, the changes, the per-rule summary and the candidate
        run's alerts."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "transactions": self.transactions,
            "changes": [c.__dict__ for c in self.changes],
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "rules": self.rules(truth),
            "alerts": [{k: a[k] for k in ALERT_FIELDS} for a in self.candidate],
        }


def run(
    settings: Settings,
    start: dt.datetime,
    end: dt.datetime,
    table: Any,
    changes: list[Change],
    history: ParameterHistory,
    progress: Callable[[str], None] = lambda _: None,
) -> Backtest:
    """Replay `table` (the lake's transactions from `start` to `end`, jobs.history.lake
    `transactions`) with `history` (the current parameters) and, when there are `changes`,
    with them too."""
    import time

    from jobs.history.replay import replay, write_replay_input

    timings: dict[str, float] = {}
    candidate_history = history
    for change in changes:
        candidate_history = candidate_history.with_changes(change.rule, change.changes)
    rules = [r for r in rule_names() if getattr(settings.job.rules, r).enabled]
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="fraud-backtest-") as tmp:
        plan = (
            {"current": history, "candidate": candidate_history}
            if changes
            else {"current": history}
        )
        for name, params in plan.items():
            path = Path(tmp) / f"{name}.parquet"
            t0 = time.monotonic()
            progress(f"replaying {table.num_rows:,} transactions with the {name} parameters")
            write_replay_input(table, params, path)
            runs[name], _ = replay(settings, rules, path, input_format="parquet")
            timings[name] = time.monotonic() - t0
    return Backtest(
        start=start,
        end=end,
        transactions=table.num_rows,
        changes=changes,
        current=runs["current"],
        candidate=runs.get("candidate", runs["current"]),
        seconds=timings,
    )
