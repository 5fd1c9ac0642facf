"""`fraudctl evaluate`: precision and recall of the alerts against the producer's ground truth.

Matching rule. An alert *matches* a scenario when both hold:

1. the alert's `rule` equals the scenario's `expected_rule`, and
2. the alert shares at least one transaction id with the scenario, or the alert is about the
   scenario's entity (same `entity_type` and `entity_id`: card token or device id) and its
   `event_time` lies within the scenario's span [`first_event_time` - slack,
   `last_event_time` + slack] (slack = 5 min by default, one detection window; when the truth
   has no times, the entity alone decides).

- An alert that matches at least one scenario is a true positive, otherwise a false positive.
- A scenario is recalled when at least one alert matches it. Scenarios marked
  `"complete": false` (cut short by the producer) are left out of recall, but alerts matching
  them are not counted as false positives.
- Per rule: precision = TP alerts of the rule / all alerts of the rule; recall = recalled
  scenarios expecting the rule / scenarios expecting it (None when no scenario expects it).
- Per scenario type: recall = recalled scenarios of the type / scenarios of the type;
  precision = alerts matching a scenario of the type / (those + false-positive alerts of the
  type's expected rule(s)). An alert matching scenarios of another type is not a false alarm.
- The `ALL` row: micro-averaged over every alert and every complete scenario.

Look-alikes (truth lines of kind "lookalike": legit purchases that share traits with the
behavioural fraud RISK_SCORE is labelled with) are not fraud: an alert about one matches no
scenario and is a false positive like any other. They get a section of their own: per
look-alike type, how many a RISK_SCORE alert flagged (an alert whose transaction ids include
one of the look-alike's) and the fraction. The behavioural scenarios' recall is their
`by_scenario_type` rows (expected rule RISK_SCORE).

Truth lines of kind "invalid" are counted but not evaluated.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.producer import LOOKALIKE_RULE, SCENARIO_RULES
from fraudctl.times import parse_time

DEFAULT_SLACK = dt.timedelta(minutes=5)


@dataclass
class Scenario:
    scenario_id: str
    scenario_type: str
    expected_rule: str
    entity_type: str | None
    entity_id: str | None
    transaction_ids: frozenset[str]
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    complete: bool = True

    @classmethod
    def from_truth(cls, obj: Mapping[str, Any]) -> Scenario:
        return cls(
            scenario_id=str(obj.get("scenario_id")),
            scenario_type=str(obj.get("scenario_type")),
            expected_rule=str(obj.get("expected_rule")),
            entity_type=obj.get("entity_type"),
            entity_id=obj.get("entity_id"),
            transaction_ids=frozenset(str(t) for t in obj.get("transaction_ids") or ()),
            first=parse_time(obj.get("first_event_time")),
            last=parse_time(obj.get("last_event_time")),
            complete=obj.get("complete", True) is not False,
        )


@dataclass
class Lookalike:
    """A legit look-alike of behavioural fraud (producer/lookalikes.py)."""

    lookalike_id: str
    lookalike_type: str
    entity_id: str | None
    transaction_ids: frozenset[str]
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    @classmethod
    def from_truth(cls, obj: Mapping[str, Any]) -> Lookalike:
        return cls(
            lookalike_id=str(obj.get("lookalike_id")),
            lookalike_type=str(obj.get("lookalike_type")),
            entity_id=obj.get("entity_id"),
            transaction_ids=frozenset(str(t) for t in obj.get("transaction_ids") or ()),
            first=parse_time(obj.get("first_event_time")),
            last=parse_time(obj.get("last_event_time")),
        )


@dataclass
class Truth:
    scenarios: list[Scenario] = field(default_factory=list)
    invalid: int = 0
    lookalikes: list[Lookalike] = field(default_factory=list)


@dataclass
class Score:
    name: str
    alerts: int = 0
    true_positives: int = 0
    false_positives: int = 0
    # alerts of a rule no scenario is labelled with: neither right nor wrong by the truth
    unlabelled: int = 0
    scenarios: int = 0
    recalled: int = 0

    @property
    def precision(self) -> float | None:
        denom = self.true_positives + self.false_positives
        return self.true_positives / denom if denom else None

    @property
    def recall(self) -> float | None:
        return self.recalled / self.scenarios if self.scenarios else None

    def row(self, label: str) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            label: self.name,
            "alerts": self.alerts,
            "tp": self.true_positives,
            "fp": self.false_positives,
            "unlabelled": self.unlabelled,
            "scenarios": self.scenarios,
            "recalled": self.recalled,
            "precision": r(self.precision),
            "recall": r(self.recall),
        }


def read_truth(lines: Iterable[str]) -> Truth:
    """Parse the producer's truth JSONL (blank lines skipped; a bad line raises ValueError)."""
    truth = Truth()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"truth line {n} is not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"truth line {n} is not a JSON object")
        if obj.get("kind") == "scenario":
            truth.scenarios.append(Scenario.from_truth(obj))
        elif obj.get("kind") == "lookalike":
            truth.lookalikes.append(Lookalike.from_truth(obj))
        elif obj.get("kind") == "invalid":
            truth.invalid += 1
    return truth


def read_alerts_jsonl(path: Path) -> list[dict[str, Any]]:
    """Alerts from a JSONL file (one alert object per line, e.g. `kcat` output)."""
    out = []
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"alerts line {n} is not JSON: {exc}") from exc
    return out


def matches(alert: Mapping[str, Any], sc: Scenario, slack: dt.timedelta = DEFAULT_SLACK) -> bool:
    """Does `alert` detect scenario `sc` (the module docstring's rule)?"""
    if alert.get("rule") != sc.expected_rule:
        return False
    if sc.transaction_ids.intersection(str(t) for t in alert.get("transaction_ids") or ()):
        return True
    if sc.entity_id is None or alert.get("entity_id") != sc.entity_id:
        return False
    if sc.entity_type is not None and alert.get("entity_type") not in (None, sc.entity_type):
        return False
    if sc.first is None or sc.last is None:
        return True
    t = parse_time(alert.get("event_time"))
    return t is None or sc.first - slack <= t <= sc.last + slack


def within_truth_span(
    alerts: Iterable[Mapping[str, Any]], truth: Truth, slack: dt.timedelta = DEFAULT_SLACK
) -> list[Mapping[str, Any]]:
    """The alerts whose event time falls in the period the truth covers (± slack).

    A truth file describes one producer run; alerts of other runs in the same database are
    about traffic it knows nothing of, so they are neither hits nor false alarms."""
    spans = [*truth.scenarios, *truth.lookalikes]
    firsts = [sc.first for sc in spans if sc.first is not None]
    lasts = [sc.last for sc in spans if sc.last is not None]
    if not firsts or not lasts:
        return list(alerts)
    lo, hi = min(firsts) - slack, max(lasts) + slack
    return [a for a in alerts if (t := parse_time(a.get("event_time"))) is None or lo <= t <= hi]


# rules the producer's scenarios are labelled with; the alerts of any other rule have no ground
# truth to be right or wrong against: `unlabelled`
LABELLED_RULES = frozenset(SCENARIO_RULES.values())


def _minutes(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 60:.1f} min"


def explain_miss(
    sc: Scenario,
    alerts: Iterable[Mapping[str, Any]],
    slack: dt.timedelta = DEFAULT_SLACK,
    late_ids: frozenset[str] = frozenset(),
) -> str:
    """Why no alert matched scenario `sc`: its transactions that came too late for the rule
    (dead letters `late_event`), else what the alerts say about its entity."""
    late = sc.transaction_ids & late_ids
    if late:
        return (
            f"{len(late)} of its {len(sc.transaction_ids)} transactions arrived behind the "
            "watermark (dead letters late_event), too late for a window or pattern"
        )
    mine = [a for a in alerts if sc.entity_id is not None and a.get("entity_id") == sc.entity_id]
    if not mine:
        return f"no alert of any rule about {sc.entity_type or 'its entity'} {sc.entity_id}"
    same_rule = [a for a in mine if a.get("rule") == sc.expected_rule]
    if not same_rule:
        others = sorted({str(a.get("rule")) for a in mine})
        return f"alerts about its entity, but only of {', '.join(others)}"
    if sc.first is None or sc.last is None:
        return "an alert of its rule about its entity, but no shared transaction"
    # an alert of the right rule on the entity, outside the span: say how far
    nearest = min(
        (t for a in same_rule if (t := parse_time(a.get("event_time"))) is not None),
        key=lambda t: min(abs(t - sc.first), abs(t - sc.last)),
        default=None,
    )
    if nearest is None:
        return f"{sc.expected_rule} alerts about its entity have no event time"
    where = (
        f"{_minutes(sc.first - nearest)} before" if nearest < sc.first
        else f"{_minutes(nearest - sc.last)} after"
    )  # fmt: skip
    return (
        f"nearest {sc.expected_rule} alert about its entity is {where} the scenario, outside "
        f"± {_minutes(slack)} (an earlier alert of the same cooldown period covered it, or the "
        "scenario's transactions came too late)"
    )


def lookalikes_flagged(
    alerts: Iterable[Mapping[str, Any]], truth: Truth, rule: str = LOOKALIKE_RULE
) -> list[dict[str, Any]]:
    """Per look-alike type (and `ALL`): how many look-alikes an alert of `rule` flagged (an
    alert whose transaction ids include one of the look-alike's), and the fraction."""
    flagged_ids: set[str] = set()
    for alert in alerts:
        if alert.get("rule") == rule:
            flagged_ids.update(str(t) for t in alert.get("transaction_ids") or ())
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for la in truth.lookalikes:
        hit = bool(la.transaction_ids & flagged_ids)
        for key in (la.lookalike_type, "ALL"):
            counts[key][0] += 1
            counts[key][1] += hit

    def row(name: str) -> dict[str, Any]:
        n, flagged = counts[name]
        return {
            "lookalike_type": name,
            "lookalikes": n,
            "flagged": flagged,
            "flagged_fraction": round(flagged / n, 4) if n else None,
        }

    types = sorted(k for k in counts if k != "ALL")
    return [row(k) for k in types] + ([row("ALL")] if types else [])


def evaluate(
    alerts: Iterable[Mapping[str, Any]],
    truth: Truth,
    slack: dt.timedelta = DEFAULT_SLACK,
    late_ids: Iterable[str] = (),
) -> dict[str, Any]:
    """Per-rule and per-scenario-type precision/recall, the ALL row, and why each missed
    scenario was missed (`late_ids`: transactions the job dead-lettered as late_event)."""
    late = frozenset(late_ids)
    alerts = list(alerts)
    by_rule_sc: dict[str, list[Scenario]] = defaultdict(list)
    for sc in truth.scenarios:
        by_rule_sc[sc.expected_rule].append(sc)
    rules: dict[str, Score] = {}
    types: dict[str, Score] = {}
    total = Score("ALL")
    recalled_ids: set[str] = set()
    type_rules: dict[str, set[str]] = defaultdict(set)
    for sc in truth.scenarios:
        type_rules[sc.scenario_type].add(sc.expected_rule)
    fp_by_rule: dict[str, int] = defaultdict(int)
    tp_by_type: dict[str, int] = defaultdict(int)
    for alert in alerts:
        rule = str(alert.get("rule"))
        score = rules.setdefault(rule, Score(rule))
        score.alerts += 1
        total.alerts += 1
        if rule not in LABELLED_RULES:
            # no producer scenario expects this rule, so the truth cannot call its alerts
            # right or wrong: counted as unlabelled, left out of precision
            score.unlabelled += 1
            total.unlabelled += 1
            continue
        hit = [sc for sc in by_rule_sc.get(rule, ()) if matches(alert, sc, slack)]
        if hit:
            score.true_positives += 1
            total.true_positives += 1
            recalled_ids.update(sc.scenario_id for sc in hit)
            for t in {sc.scenario_type for sc in hit}:
                tp_by_type[t] += 1
        else:
            score.false_positives += 1
            total.false_positives += 1
            fp_by_rule[rule] += 1
    for sc in truth.scenarios:
        scores = (
            rules.setdefault(sc.expected_rule, Score(sc.expected_rule)),
            types.setdefault(sc.scenario_type, Score(sc.scenario_type)),
            total,
        )
        if not sc.complete:
            continue
        for s in scores:
            s.scenarios += 1
            s.recalled += sc.scenario_id in recalled_ids
    for name, s in types.items():
        s.true_positives = tp_by_type.get(name, 0)
        s.false_positives = sum(fp_by_rule.get(r, 0) for r in type_rules[name])
        s.alerts = s.true_positives + s.false_positives
    return {
        "by_rule": [rules[k].row("rule") for k in sorted(rules)],
        "by_scenario_type": [
            {**types[k].row("scenario_type"), "expected_rule": ", ".join(sorted(type_rules[k]))}
            for k in sorted(types)
        ],
        "all": total.row("scope"),
        # legit look-alikes of behavioural fraud that LOOKALIKE_RULE flagged (its false alarms)
        "lookalikes": {"rule": LOOKALIKE_RULE, "by_type": lookalikes_flagged(alerts, truth)},
        "truth": {
            "scenarios": len(truth.scenarios),
            "incomplete_scenarios": sum(not sc.complete for sc in truth.scenarios),
            "invalid_records": truth.invalid,
            "lookalikes": len(truth.lookalikes),
        },
        "matching": (
            "same rule as expected, and a shared transaction id or the same entity within "
            f"the scenario's span ± {int(slack.total_seconds())} s"
        ),
        "missed": [
            {
                "scenario_id": sc.scenario_id,
                "scenario_type": sc.scenario_type,
                "rule": sc.expected_rule,
                "entity_id": sc.entity_id,
                "first": sc.first.isoformat() if sc.first else None,
                "last": sc.last.isoformat() if sc.last else None,
                "why": explain_miss(sc, alerts, slack, late),
            }
            for sc in truth.scenarios
            if sc.complete and sc.scenario_id not in recalled_ids
        ],
    }
