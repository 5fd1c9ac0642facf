"""Given/expect cases for each rule, run in-process by one PyFlink harness (no Kafka, no cluster).

Each rule `<rule>` has a case file `sql_templates/rules/<rule>.cases.yaml` beside its template:
named cases, each a list of input rows (`given`, in production order) and the exact alerts the
rule must emit for them (`expect`; an empty list for a near miss). The harness replays the rows
through the rule's own SQL as `fraudctl backtest` replays the lake (jobs/history/replay.py: the
job's settings, views and the rule's template over a JSON Lines file of the rows, in a local
PyFlink mini-cluster), collects the alerts and compares.

The cases of every rule run in one job (one job start instead of one per rule). Case k (counted
across the rules) happens on day k after BASE_TIME, and its cards, devices, users and
transaction ids carry the prefix `cK-`, so cases never share an entity and a case's watermark
starts behind all of its rows, as if it ran alone. A case's rows may trip other rules too (a
velocity burst of large amounts is also HIGH_VALUE): a case is judged by its own rule's alerts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config import Settings
from config.rule_changes import RuleChangeError, changed_parameters, initial_parameters
from jobs.history.replay import replay
from jobs.sql.render import RULES_DIR, risk_score_params
from producer.places import CITIES
from udfs.risk_score import RiskParams
from udfs.risk_score import risk_score as score_transaction
from udfs.rule_parameters import ParameterHistory, RuleVersion

BASE_TIME = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # a Monday, 00:00 UTC
_CITY = {c.name: c for c in CITIES}
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})(\.\d{1,3})?$")
# Flink options only the harness sets: one task, and a watermark after every row, so a row
# behind the watermark is behind it deterministically.
HARNESS_OPTIONS = {"parallelism.default": "1", "pipeline.auto-watermark-interval": "0 ms"}

Seconds = float | str  # seconds after the case's start, or a clock time "HH:MM:SS[.fff]"


def seconds(value: Seconds) -> float:
    """A case time in seconds after the case's start (midnight UTC of its day)."""
    if isinstance(value, int | float):
        return float(value)
    m = _CLOCK_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is neither seconds nor a clock time HH:MM:SS[.fff]")
    h, mi, s, frac = m.groups()
    return int(h) * 3600 + int(mi) * 60 + int(s) + float(frac or 0)


class Given(BaseModel):
    """One input row: a valid, scored transaction as the rules see it."""

    model_config = ConfigDict(extra="forbid")

    at: Seconds
    card: str = "A"
    id: str | None = None  # default t1, t2, ... in file order
    amount: Decimal = Decimal("20.00")
    user: str | None = None  # default u-<card>
    device: str | None = None  # default d-<card>
    city: str = "Oakland"
    lat: float | None = None  # default: the city's
    lon: float | None = None
    category: str = "grocery"
    channel: str = "pos"
    currency: str = "USD"
    risk_score: float | None = None  # default: udfs/risk_score.py with the config's params


class Expected(BaseModel):
    """One alert the rule must emit; only the fields given are compared."""

    model_config = ConfigDict(extra="forbid")

    entity: str  # a card alias, or a device for device rules
    user: str | None = None  # the alert's user_id, as given (default u-<card>)
    transaction_ids: list[str] | None = None
    event_time: Seconds | None = None
    window_start: Seconds | None = None
    window_end: Seconds | None = None
    severity: str | None = None
    amount: float | None = None
    score: float | None = None
    details: dict[str, Any] | None = None
    rule_version: int | None = None


class RuleChange(BaseModel):
    """A `fraudctl rules set` of the rule under test, in force from `at` (event time)."""

    model_config = ConfigDict(extra="forbid")

    at: Seconds
    set: dict[str, Any] = Field(min_length=1)


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    # run-time parameter changes during the case, in order (versions 1, 2, ...)
    rule_changes: list[RuleChange] = Field(default_factory=list)
    given: list[Given] = Field(min_length=1)
    expect: list[Expected]
    # ids of the rows that arrive behind the watermark (dead letters `late_event`: windows and
    # patterns no longer count them); compared only when given
    late: list[str] | None = None


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[Case] = Field(min_length=1)


class CaseFileError(ValueError):
    """A case file is missing or malformed; the message names the file and the problem."""


def case_file(rule: str) -> Path:
    return RULES_DIR / f"{rule}.cases.yaml"


def load_cases(rule: str) -> list[Case]:
    """The cases of `rule`, validated (unknown keys and bad values are refused)."""
    path = case_file(rule)
    if not path.exists():
        raise CaseFileError(f"{path}: no case file for rule {rule!r}")
    try:
        cases = CaseFile.model_validate(yaml.safe_load(path.read_text())).cases
    except (yaml.YAMLError, ValidationError) as exc:
        raise CaseFileError(f"{path}: {exc}") from exc
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise CaseFileError(f"{path}: case names must be unique")
    return cases


@dataclass(frozen=True)
class _Namespace:
    """Case k's private names and clock."""

    index: int

    @property
    def prefix(self) -> str:
        return f"c{self.index}-"

    @property
    def start(self) -> dt.datetime:
        return BASE_TIME + dt.timedelta(days=self.index)

    def name(self, local: str) -> str:
        return self.prefix + local

    def local(self, name: str | None) -> str | None:
        return name[len(self.prefix) :] if name and name.startswith(self.prefix) else name

    def iso(self, at: Seconds) -> str:
        t = self.start + dt.timedelta(seconds=seconds(at))
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    def offset(self, iso: str | None) -> float | None:
        if iso is None:
            return None
        t = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        return (t - self.start).total_seconds()


def _parameter_history(settings: Settings, rule: str, case: Case, ns: _Namespace):  # type: ignore[no-untyped-def]
    """The rule parameters' versions during `case`: the config, then its `rule_changes`,
    validated as `fraudctl rules set` validates them."""
    rules = settings.job.rules
    history = ParameterHistory(initial_parameters(rules))
    for number, change in enumerate(case.rule_changes, start=1):
        current = history.latest(rule).params
        try:
            params = changed_parameters(rules, rule, current, change.set)
        except RuleChangeError as exc:
            raise CaseFileError(f"case {case.name!r}: {exc}") from exc
        at = ns.start + dt.timedelta(seconds=seconds(change.at))
        history.add(RuleVersion(rule, number, int(at.timestamp() * 1000), params))
    return history


def input_rows(
    cases: list[Case],
    params: RiskParams,
    settings: Settings,
    rule: str,
    first: int = 0,
    first_offset: int = 0,
) -> list[dict[str, Any]]:
    """Every case's rows as `scored_transactions` records, cases in order, the first of them
    case number `first` (its namespace) at Kafka offset `first_offset`."""
    out = []
    for k, case in enumerate(cases, start=first):
        ns = _Namespace(k)
        history = _parameter_history(settings, rule, case, ns)
        for i, g in enumerate(case.given, start=1):
            offset = first_offset + len(out)
            city = _CITY.get(g.city)
            if city is None and (g.lat is None or g.lon is None):
                raise CaseFileError(f"case {case.name!r}: unknown city {g.city!r}; give lat/lon")
            iso = ns.iso(g.at)
            hour = int(seconds(g.at) // 3600) % 24
            score = g.risk_score
            if score is None:
                score = score_transaction(
                    float(g.amount), g.channel, g.category, g.currency, hour, params
                )
            out.append(
                {
                    "transaction_id": ns.name(g.id or f"t{i}"),
                    "card_token": ns.name(g.card),
                    "card_last4": f"{zlib.crc32(g.card.encode()) % 10000:04d}",
                    "user_id": ns.name(g.user or f"u-{g.card}"),
                    "device_id": ns.name(g.device or f"d-{g.card}"),
                    "amount": str(g.amount),
                    "currency": g.currency,
                    "merchant": "Case Merchant",
                    "merchant_category": g.category,
                    "channel": g.channel,
                    "city": g.city,
                    "state": city.state if city else None,
                    "lat": g.lat if g.lat is not None else city.lat,
                    "lon": g.lon if g.lon is not None else city.lon,
                    "risk_score": score,
                    "rule_params": history.row_at(
                        int((ns.start + dt.timedelta(seconds=seconds(g.at))).timestamp() * 1000)
                    ),
                    "late": False,  # lateness here is the replay's own, from the rows' order
                    "kafka_partition": 0,
                    "kafka_offset": offset,
                    "event_time": iso,
                }
            )
    return out


@dataclass
class Outcome:
    """What one case produced: its alerts (in the case's own terms, see `_localised`) and the
    ids of its rows that arrived late (None when no case of the rule asked)."""

    alerts: list[dict[str, Any]]
    late: list[str] | None = None


def all_rows(settings: Settings, cases: Mapping[str, list[Case]]) -> list[dict[str, Any]]:
    """The rows of every rule's cases, rule after rule, each case in its own namespace."""
    params = RiskParams.from_json(risk_score_params(settings))
    rows: list[dict[str, Any]] = []
    first = 0
    for rule, rule_cases in cases.items():
        rows += input_rows(rule_cases, params, settings, rule, first, len(rows))
        first += len(rule_cases)
    return rows


def run_rules(settings: Settings, cases: Mapping[str, list[Case]]) -> dict[str, list[Outcome]]:
    """Run every case of every rule of `cases` in one in-process job; per rule, each case's
    outcome in case order (the alerts of the case's own rule only)."""
    want_late = any(case.late is not None for rule_cases in cases.values() for case in rule_cases)
    with tempfile.TemporaryDirectory(prefix="rule-cases-") as tmp:
        path = Path(tmp) / "scored_transactions.jsonl"
        rows = all_rows(settings, cases)
        path.write_text("".join(json.dumps(r, default=float) + "\n" for r in rows))
        alerts, late = replay(
            settings, list(cases), path, options=HARNESS_OPTIONS, late_ids=want_late
        )
    owner: list[tuple[str, int]] = [
        (r, i) for r, rule_cases in cases.items() for i in range(len(rule_cases))
    ]
    outcomes = {
        rule: [Outcome([], None if late is None else []) for _ in rule_cases]
        for rule, rule_cases in cases.items()
    }
    for alert in alerts:
        k = _case_of(alert["entity_id"])
        rule, i = owner[k]
        if alert["rule"] == rule.upper():
            outcomes[rule][i].alerts.append(_localised(alert, _Namespace(k)))
    for txn in late or []:
        k = _case_of(txn)
        rule, i = owner[k]
        outcomes[rule][i].late.append(_Namespace(k).local(txn))
    return outcomes


def _case_of(name: str) -> int:
    return int(re.match(r"c(\d+)-", name).group(1))


def _localised(alert: dict[str, Any], ns: _Namespace) -> dict[str, Any]:
    """An alert in the case's own terms: aliases, local ids, seconds after the case start."""
    out = dict(alert)
    out["entity"] = ns.local(alert["entity_id"])
    out["user"] = ns.local(alert["user_id"])
    out["transaction_ids"] = [ns.local(t) for t in alert["transaction_ids"] or []]
    for key in ("event_time", "window_start", "window_end"):
        out[key] = ns.offset(alert[key])
    return out


_COMPARED = (
    "entity",
    "user",
    "transaction_ids",
    "severity",
    "amount",
    "score",
    "details",
    "rule_version",
)
_TIMES = ("event_time", "window_start", "window_end")


def _matches(expected: Expected, alert: dict[str, Any]) -> bool:
    for key in _COMPARED + _TIMES:
        want = getattr(expected, key)
        if want is None:
            continue
        got = alert.get(key)
        if key in _TIMES:
            want = seconds(want)
        if key == "details":
            if not all(_same(v, (got or {}).get(k)) for k, v in want.items()):
                return False
        elif not _same(want, got):
            return False
    return True


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, int | float) and isinstance(got, int | float):
        return abs(float(want) - float(got)) <= 1e-6 * max(1.0, abs(float(want)))
    return want == got


def mismatches(case: Case, outcome: Outcome) -> list[str]:
    """What differs between a case's expectations and what the rule did (empty when the alerts
    agree one to one, and the late rows too where the case names them)."""
    unmatched = list(outcome.alerts)
    missing = []
    for want in case.expect:
        hit = next((a for a in unmatched if _matches(want, a)), None)
        if hit is None:
            missing.append(want.model_dump(exclude_none=True))
        else:
            unmatched.remove(hit)
    problems = [f"expected, not emitted: {m}" for m in missing]
    shown = _COMPARED + _TIMES
    problems += [f"emitted, not expected: { {k: a.get(k) for k in shown} }" for a in unmatched]
    if case.late is not None and sorted(case.late) != sorted(outcome.late or []):
        problems.append(f"late rows: expected {sorted(case.late)}, got {sorted(outcome.late)}")
    return problems
