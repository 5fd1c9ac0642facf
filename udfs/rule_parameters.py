"""Rule parameters in force at each transaction's event time, read by the running job.

Version 0 of every rule is the rendered config. Later versions are records of the compacted
topic `fraud_rules` (`fraudctl rules set` writes them): key = the rule's config name, value =
a `RuleVersion` as JSON carrying the rule's full set of run-time parameters and the event time
from which they apply. A transaction is judged by the newest version whose `effective_at_ms`
is not after its event time, so a change applies to the transactions after its effective time
and a replay with the same history gives the same alerts.

Why a Python UDF and not an event-time temporal join: a temporal join emits a transaction only
once the watermark passes it, which would put `job.watermark_delay` into every
per-transaction alert (its budget is 1 s). The parameters are looked up in the job's scoring
Python operator instead (one per read of the input), as one more output of the batch the other
UDFs already see: the full topic is read before the first batch, a thread follows it after that.

`TUNABLE` is the one list of run-time parameters; window lengths, slides and pattern shapes are
structural and change with `fraudctl upgrade`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_FLAGS = {"enabled": "BOOLEAN", "severity": "STRING"}
# rule -> run-time parameter -> its SQL type, in rules-table order (config.job.Rules)
TUNABLE: dict[str, dict[str, str]] = {
    "high_value": {**_FLAGS, "amount_over": "DOUBLE"},
    "velocity": {**_FLAGS, "max_count": "INT"},
    "device_sharing": {**_FLAGS, "max_users": "INT"},
    "geo_hop": dict(_FLAGS),
    "impossible_travel": {**_FLAGS, "max_speed_kmh": "DOUBLE", "min_distance_km": "DOUBLE"},
    # amounts as DOUBLE: compared with the DECIMAL(18, 2) amount, a limit given to the cent
    # decides exactly as a DECIMAL literal would (both sides become the same nearest double)
    "card_testing": {**_FLAGS, "probe_under": "DOUBLE", "charge_over": "DOUBLE"},
    # RISK_SCORE's severity follows the score (critical_at)
    "risk_score": {"enabled": "BOOLEAN", "threshold": "DOUBLE", "critical_at": "DOUBLE"},
}


# the rules that judge one transaction at a time; with job.per_transaction_read `own` they have
# a read of the input of their own, and each read's scoring returns only its rules' parameters
PER_TRANSACTION_RULES = ("high_value", "risk_score")
# the UDFs the job registers (sql_templates/functions/udfs.sql.j2) -> the rules whose
# parameters each returns: every field is one more Arrow column back from Python per row
UDF_RULES: dict[str, tuple[str, ...]] = {
    "rule_parameters_udf": tuple(TUNABLE),
    "per_transaction_rule_parameters_udf": PER_TRANSACTION_RULES,
    "counted_rule_parameters_udf": tuple(r for r in TUNABLE if r not in PER_TRANSACTION_RULES),
}


def column(rule: str, key: str) -> str:
    """The field of the `rule_params` row holding `key` of `rule` (`velocity_max_count`);
    `key` = "version" names the rule's version."""
    return f"{rule}_{key}"


def rule_columns(rule: str) -> dict[str, str]:
    """The fields of `rule` in the `rule_params` row -> their SQL types: its version, then its
    parameters."""
    return {column(rule, "version"): "INT"} | {
        column(rule, key): sql_type for key, sql_type in TUNABLE[rule].items()
    }


def columns(rules: Iterable[str] = tuple(TUNABLE)) -> dict[str, str]:
    """Every field of the `rule_params` row of `rules` (default: all) -> its SQL type, rule by
    rule."""
    return {name: t for rule in rules for name, t in rule_columns(rule).items()}


_PYTHON_TYPES = {"BOOLEAN": bool, "INT": int, "DOUBLE": float, "STRING": str}
_NUMPY_TYPES = {"BOOLEAN": np.bool_, "INT": np.int32, "DOUBLE": np.float64, "STRING": object}


def _coerce(sql_type: str, value: Any) -> Any:
    return None if value is None else _PYTHON_TYPES[sql_type](value)


@dataclass(frozen=True)
class RuleVersion:
    """One version of one rule's run-time parameters (a `fraud_rules` record)."""

    rule: str
    version: int
    effective_at_ms: int
    params: dict[str, Any]
    changed_by: str = ""
    changed_at: str = ""
    effective_at: str = ""

    @classmethod
    def from_json(cls, text: str | bytes) -> RuleVersion:
        """Parse a record value; ValueError names what is wrong."""
        try:
            raw = json.loads(text)
            version = cls(
                rule=str(raw["rule"]),
                version=int(raw["version"]),
                effective_at_ms=int(raw["effective_at_ms"]),
                params=dict(raw["params"]),
                changed_by=str(raw.get("changed_by", "")),
                changed_at=str(raw.get("changed_at", "")),
                effective_at=str(raw.get("effective_at", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a rule version record: {exc!r}") from exc
        if version.rule not in TUNABLE:
            raise ValueError(f"unknown rule {version.rule!r}")
        unknown = set(version.params) - set(TUNABLE[version.rule])
        if unknown:
            raise ValueError(f"{version.rule}: unknown parameters {sorted(unknown)}")
        return version

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


@dataclass
class ParameterHistory:
    """Every known version per rule, ordered by effective time; version 0 (the config) applies
    from the beginning of time."""

    initial: Mapping[str, Mapping[str, Any]]
    _versions: dict[str, list[RuleVersion]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rule, keys in TUNABLE.items():
            params = {k: self.initial.get(rule, {}).get(k) for k in keys}
            self._versions[rule] = [RuleVersion(rule, 0, np.iinfo(np.int64).min, params)]

    def add(self, version: RuleVersion) -> None:
        """Insert (or replace, same rule and number) a version; its parameters not given keep
        the values of the version before it."""
        versions = [v for v in self._versions[version.rule] if v.version != version.version]
        earlier = [v for v in versions if v.effective_at_ms <= version.effective_at_ms]
        base = (earlier or versions)[-1].params
        full = RuleVersion(**{**asdict(version), "params": {**base, **version.params}})
        versions.append(full)
        versions.sort(key=lambda v: (v.effective_at_ms, v.version))
        self._versions[version.rule] = versions

    def latest(self, rule: str) -> RuleVersion:
        """The version with the highest number (what `fraudctl rules set` builds on)."""
        return max(self._versions[rule], key=lambda v: v.version)

    def columns_at(self, times_ms: Iterable[int]) -> dict[str, np.ndarray]:
        """The `rule_params` fields for transactions at `times_ms` (epoch ms), column-wise
        (numpy: a batch costs a few numpy calls per field, whatever its length)."""
        times = np.asarray(times_ms if isinstance(times_ms, np.ndarray) else list(times_ms))
        times = times.astype(np.int64)
        out: dict[str, np.ndarray] = {}
        for rule, keys in TUNABLE.items():
            versions = self._versions[rule]
            if len(versions) == 1:  # no change: one version for every row
                idx = np.zeros(len(times), dtype=np.intp)
            else:
                starts = np.array([v.effective_at_ms for v in versions], dtype=np.int64)
                idx = np.maximum(np.searchsorted(starts, times, side="right") - 1, 0)
            out[column(rule, "version")] = np.array([v.version for v in versions], dtype=np.int32)[
                idx
            ]
            for key, sql_type in keys.items():
                values = [_coerce(sql_type, v.params.get(key)) for v in versions]
                out[column(rule, key)] = np.array(values, dtype=_NUMPY_TYPES[sql_type])[idx]
        return out

    def same_versions(self, first_ms: int, last_ms: int) -> bool:
        """Whether every rule has one version in force from `first_ms` to `last_ms`."""
        for versions in self._versions.values():
            starts = [v.effective_at_ms for v in versions[1:]]
            if any(first_ms < start <= last_ms for start in starts):
                return False
        return True

    def row_at(self, time_ms: int) -> dict[str, Any]:
        """The `rule_params` row of one transaction at `time_ms` (plain Python values)."""
        return {
            name: values[0].item() if hasattr(values[0], "item") else values[0]
            for name, values in self.columns_at([time_ms]).items()
        }


def read_versions(consumer: Any, topic: str, timeout_s: float) -> list[RuleVersion]:
    """Every version in `topic` up to its current end, through a confluent_kafka consumer
    (assigned here to every partition from the beginning); records that are not versions are
    logged and skipped. TimeoutError when the end is not reached in `timeout_s`."""
    import time

    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None:
        return []
    parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
    consumer.assign(parts)
    ends = {}
    for tp in parts:
        _, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
        if high > 0:
            ends[tp.partition] = high
    out: list[RuleVersion] = []
    deadline = time.monotonic() + timeout_s
    while ends:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: not read to its end within {timeout_s:g} s")
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None and msg.value() is not None:
            try:
                out.append(RuleVersion.from_json(msg.value()))
            except ValueError as exc:
                log.warning("%s offset %s skipped: %s", topic, msg.offset(), exc)
        # by position, not by the last message: compaction may leave gaps in the offsets
        positions = consumer.position([TopicPartition(topic, p) for p in ends])
        ends = {
            tp.partition: ends[tp.partition] for tp in positions if tp.offset < ends[tp.partition]
        }
    return out


class TopicFollower:
    """The job's copy of the versions: the whole topic read once, then followed by a thread."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.history = ParameterHistory(settings["initial"])
        self._lock = threading.Lock()
        # per set of columns asked for (None: all), the rows of one set of versions and the
        # time they were built for, built once: most batches lie within one set
        self._frames: dict[tuple[str, ...] | None, tuple[Any, int]] = {}
        self._topic = settings.get("topic")
        self._consumer = None
        if self._topic:
            from confluent_kafka import Consumer

            self._consumer = Consumer(
                {
                    "bootstrap.servers": settings["bootstrap_servers"],
                    "group.id": "fraud-rules-reader",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                }
            )
            for version in read_versions(self._consumer, self._topic, timeout_s=60):
                self.history.add(version)
            threading.Thread(target=self._follow, name="fraud-rules", daemon=True).start()

    def _follow(self) -> None:
        assigned = bool(self._consumer.assignment())
        while True:
            if not assigned:  # the topic did not exist yet: look again
                versions = read_versions(self._consumer, self._topic, timeout_s=60)
                assigned = bool(self._consumer.assignment())
                self._add(versions)
                if not assigned:
                    threading.Event().wait(1.0)
                continue
            msg = self._consumer.poll(0.1)
            if msg is None or msg.error() is not None or msg.value() is None:
                continue
            try:
                self._add([RuleVersion.from_json(msg.value())])
            except ValueError as exc:
                log.warning("%s offset %s skipped: %s", self._topic, msg.offset(), exc)

    def _add(self, versions: list[RuleVersion]) -> None:
        with self._lock:
            self._frames.clear()
            for version in versions:
                log.info(
                    "rule %s version %s applies from %s",
                    version.rule,
                    version.version,
                    version.effective_at or version.effective_at_ms,
                )
                self.history.add(version)

    def frame_at(self, times_ms: np.ndarray, names: Sequence[str] | None = None) -> Any:
        """The `rule_params` rows of a batch as a pandas DataFrame, only the columns `names`
        when given (in that order)."""
        import pandas as pd

        def frame_for(times: np.ndarray) -> Any:
            cols = self.history.columns_at(times)
            return pd.DataFrame(cols if names is None else {name: cols[name] for name in names})

        n = len(times_ms)
        key = None if names is None else tuple(names)
        with self._lock:
            first, last = int(times_ms.min()), int(times_ms.max())
            if not self.history.same_versions(first, last):
                return frame_for(times_ms)
            frame, built_at = self._frames.get(key, (None, first))
            if (
                frame is None
                or len(frame) < n
                or not self.history.same_versions(min(first, built_at), max(last, built_at))
            ):
                frame = frame_for(np.full(max(n, 1024), first))
                self._frames[key] = (frame, first)
            return frame.iloc[:n]


_FOLLOWERS: dict[str, TopicFollower] = {}


def _parameters_batch(rowtime, settings_json, names=None):  # type: ignore[no-untyped-def]
    """Vectorized UDF body: event times in (pandas datetime64), the `rule_params` rows out
    (only the fields `names`, when given)."""

    text = settings_json if isinstance(settings_json, str) else settings_json.iloc[0]
    follower = _FOLLOWERS.get(text)
    if follower is None:
        follower = _FOLLOWERS[text] = TopicFollower(json.loads(text))
    times = np.asarray(rowtime.values, dtype="datetime64[ms]").astype(np.int64)
    return follower.frame_at(times, names)


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """The UDFs of `UDF_RULES`, built on first access so plain imports do not load PyFlink.

    SQL signature: rule_parameters(event_time TIMESTAMP(3), settings STRING) -> a ROW of
    `columns(rules)`; `settings` is JSON: the config's values (`initial`), and
    `bootstrap_servers` and `topic` of fraud_rules (no topic: the config only).
    """
    if name in UDF_RULES:
        from functools import partial

        from pyflink.table import DataTypes
        from pyflink.table.udf import udf

        types = {
            "BOOLEAN": DataTypes.BOOLEAN(),
            "STRING": DataTypes.STRING(),
            "INT": DataTypes.INT(),
            "DOUBLE": DataTypes.DOUBLE(),
        }
        fields = columns(UDF_RULES[name])
        result = DataTypes.ROW([DataTypes.FIELD(n, types[t]) for n, t in fields.items()])
        every_rule = UDF_RULES[name] == tuple(TUNABLE)
        fn = udf(
            partial(_parameters_batch, names=None if every_rule else list(fields)),
            input_types=[DataTypes.TIMESTAMP(3), DataTypes.STRING()],
            result_type=result,
            func_type="pandas",
            # one answer per event time and history; declared deterministic so the planner
            # keeps the shared scoring view planned once (the other UDFs run in its operator)
            deterministic=True,
        )
        globals()[name] = fn
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
