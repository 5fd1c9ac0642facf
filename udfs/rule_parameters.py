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
UDFs already see.

The topic is read by a `RuleVersionReader`: the whole topic in `open()`, then a
supervised thread follows it (a failure is logged and the reader starts over after a back-off;
a record that is not a valid version is logged, counted and skipped, never applied). The UDF
holds its reader from `open()` to `close()`: its settings (the config's values, where
fraud_rules is) are the job parameter `SETTINGS_PARAMETER`, which the rendered script sets
(sql_templates/settings.sql.j2). It reports the version it has applied of each rule as a Flink
metric (`fraudctl rules list` shows it beside the version written).

Which parameters may change at run time is declared by each rule's config model
(config/rules.py `runtime_parameters`); window lengths, slides and pattern shapes are
structural and change with `fraudctl upgrade`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from config.kafka import client_config
from config.rule_changes import RuleChangeError, changed_parameters
from config.rules import RuleInput, Rules, rule_names, rules_reading, runtime_parameters

log = logging.getLogger(__name__)

# the job parameter (pipeline.global-job-parameters) holding the UDF's settings as JSON:
# {"initial": {rule: parameters}, "bootstrap_servers": ..., "topic": fraud_rules or null}
SETTINGS_PARAMETER = "fraud.rule-parameters"


def tunable() -> dict[str, dict[str, str]]:
    """Every rule's run-time parameters -> their SQL types, in rules-table order."""
    return {rule: runtime_parameters(rule) for rule in rule_names()}


# the UDFs the job registers (sql_templates/functions/udfs.sql.j2) -> the rules whose
# parameters each returns: every field is one more Arrow column back from Python per row
UDF_RULES: dict[str, tuple[str, ...]] = {
    "rule_parameters_udf": rule_names(),
    "per_transaction_rule_parameters_udf": rules_reading(RuleInput.ARRIVING),
    "counted_rule_parameters_udf": rules_reading(RuleInput.ON_TIME, RuleInput.CARD_LEGS),
}
# ... and the one returning its row as JSON text (`json_rows`): the per-transaction read of a
# lone per-transaction rule, whose reads of ROW fields Flink cannot plan next to the Python
# call (jobs/sql/render.py `arriving_params_json`)
JSON_UDFS = {"per_transaction_rule_parameters_json_udf": "per_transaction_rule_parameters_udf"}


def column(rule: str, key: str) -> str:
    """The field of the `rule_params` row holding `key` of `rule` (`velocity_max_count`);
    `key` = "version" names the rule's version."""
    return f"{rule}_{key}"


def rule_columns(rule: str) -> dict[str, str]:
    """The fields of `rule` in the `rule_params` row -> their SQL types: its version, then its
    parameters."""
    return {column(rule, "version"): "INT"} | {
        column(rule, key): sql_type for key, sql_type in runtime_parameters(rule).items()
    }


def columns(rules: Iterable[str] | None = None) -> dict[str, str]:
    """Every field of the `rule_params` row of `rules` (default: all) -> its SQL type, rule by
    rule."""
    return {
        name: t for rule in (rule_names() if rules is None else rules) for name, t in
        rule_columns(rule).items()
    }  # fmt: skip


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
        """Parse and validate a record value: a known rule, its run-time parameters only, each
        value valid for the rule's config model; ValueError names what is wrong."""
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
        if version.rule not in rule_names():
            raise ValueError(f"unknown rule {version.rule!r}")
        unknown = set(version.params) - set(runtime_parameters(version.rule))
        if unknown:
            raise ValueError(f"{version.rule}: unknown parameters {sorted(unknown)}")
        if version.version < 1:
            raise ValueError(f"{version.rule}: version {version.version} (versions start at 1)")
        try:
            changed_parameters(Rules(), version.rule, {}, version.params)
        except RuleChangeError as exc:
            raise ValueError(str(exc)) from None
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
        for rule, keys in tunable().items():
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

    def with_changes(self, rule: str, changes: Mapping[str, Any]) -> ParameterHistory:
        """A copy in which every version of `rule` has `changes` over its own parameters (a
        backtest's candidate: the change as if it had always been in force)."""
        copy = ParameterHistory(self.initial)
        copy._versions = {r: list(vs) for r, vs in self._versions.items()}
        copy._versions[rule] = [
            RuleVersion(**{**asdict(v), "params": {**v.params, **changes}})
            for v in self._versions[rule]
        ]
        return copy

    def versions(self, rule: str) -> list[RuleVersion]:
        """Every version of `rule`, version 0 (the config) first, in the order they apply (by
        effective time)."""
        return list(self._versions[rule])

    def latest(self, rule: str) -> RuleVersion:
        """The version with the highest number (what `fraudctl rules set` builds on)."""
        return max(self._versions[rule], key=lambda v: v.version)

    def columns_at(
        self, times_ms: Iterable[int], rules: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The `rule_params` fields of `rules` (default: all) for transactions at `times_ms`
        (epoch ms), column-wise (numpy: a batch costs a few numpy calls per field, whatever
        its length)."""
        times = np.asarray(times_ms if isinstance(times_ms, np.ndarray) else list(times_ms))
        times = times.astype(np.int64)
        out: dict[str, np.ndarray] = {}
        for rule in rule_names() if rules is None else rules:
            versions = self._versions[rule]
            if len(versions) == 1:  # no change: one version for every row
                idx = np.zeros(len(times), dtype=np.intp)
            else:
                starts = np.array([v.effective_at_ms for v in versions], dtype=np.int64)
                idx = np.maximum(np.searchsorted(starts, times, side="right") - 1, 0)
            numbers = np.array([v.version for v in versions], dtype=np.int32)
            out[column(rule, "version")] = numbers[idx]
            for key, sql_type in runtime_parameters(rule).items():
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
    (assigned here to every partition from the beginning); records that are not valid versions
    are logged and skipped. TimeoutError when the end is not reached in `timeout_s`."""
    return _read_to_end(consumer, topic, timeout_s, on_invalid=lambda *_: None)


def _read_to_end(consumer: Any, topic: str, timeout_s: float, on_invalid: Any) -> list[RuleVersion]:
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
                on_invalid(msg, exc)
        # by position, not by the last message: compaction may leave gaps in the offsets
        positions = consumer.position([TopicPartition(topic, p) for p in ends])
        ends = {
            tp.partition: ends[tp.partition] for tp in positions if tp.offset < ends[tp.partition]
        }
    return out


class RuleVersionReader:
    """The job's copy of the rules' parameter versions: the whole topic, read once, then
    followed by a supervised thread until `stop()`.

    The thread never ends on an error: a failure to poll or to read (a broker down, a consumer
    that broke) is logged with the back-off it waits before it starts over with a new consumer
    (1 s, doubling up to 30 s); librdkafka's own connection errors are logged and waited out.
    Records that are not valid versions are logged, counted (`skipped`) and never applied.
    """

    BACKOFF_S = (1.0, 30.0)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.history = ParameterHistory(settings["initial"])
        self._topic: str | None = settings.get("topic")
        self._bootstrap = settings.get("bootstrap_servers", "")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self.skipped = 0  # records that were not valid versions
        self.failures = 0  # times the reader started over
        # per set of columns asked for (None: all), the rows of one set of versions and the
        # time they were built for, built once: most batches lie within one set
        self._frames: dict[tuple[str, ...] | None, tuple[Any, int]] = {}

    def start(self, timeout_s: float = 60) -> None:
        """Read the whole topic (TimeoutError, KafkaException: the task fails and Flink restarts
        it), then follow it with a thread."""
        if not self._topic:
            return
        self._consumer = self._new_consumer()
        self._add(_read_to_end(self._consumer, self._topic, timeout_s, self._invalid))
        self._thread = threading.Thread(target=self._supervise, name="fraud-rules", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10) -> None:
        """End the thread and close the consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._close_consumer()

    def applied(self, rule: str) -> int:
        """The newest version of `rule` this reader has (0: the config's)."""
        with self._lock:
            return self.history.latest(rule).version

    def _new_consumer(self) -> Any:
        from confluent_kafka import Consumer

        return Consumer(
            client_config(
                self._bootstrap,
                {
                    "group.id": "fraud-rules-reader",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                    # a broker back after a restart is found within a second or so, not the
                    # default's 10 s: a change waiting to be applied
                    "reconnect.backoff.max.ms": 1000,
                    "logger": log,
                },
            )
        )

    def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # closing a broken consumer: nothing left to save
                log.debug("closing the fraud_rules consumer failed", exc_info=True)

    def _invalid(self, msg: Any, exc: Exception) -> None:
        self.skipped += 1

    def _supervise(self) -> None:
        backoff = self.BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                if self._consumer is None:
                    self._consumer = self._new_consumer()
                    # whatever was written while the reader was away
                    self._add(_read_to_end(self._consumer, self._topic, 60, self._invalid))
                self._follow()
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "reading %s failed (%s: %s); starting over in %.0f s",
                    self._topic, type(exc).__name__, exc, backoff,
                )  # fmt: skip
                self._close_consumer()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.BACKOFF_S[1])
            else:
                backoff = self.BACKOFF_S[0]

    def _follow(self) -> None:
        """Poll until stopped; a consumer that reports a fatal error raises (start over)."""
        from confluent_kafka import KafkaError, KafkaException

        while not self._stop.is_set():
            if not self._consumer.assignment():  # the topic did not exist yet: look again
                self._add(_read_to_end(self._consumer, self._topic, 60, self._invalid))
                if not self._consumer.assignment():
                    self._stop.wait(1.0)
                continue
            msg = self._consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                err = msg.error()
                if err.fatal():
                    raise KafkaException(err)
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("polling %s: %s (retried by the client)", self._topic, err)
                continue
            if msg.value() is None:  # a tombstone: compaction's, not a version
                continue
            try:
                version = RuleVersion.from_json(msg.value())
            except ValueError as exc:
                log.warning("%s offset %s skipped: %s", self._topic, msg.offset(), exc)
                self._invalid(msg, exc)
                continue
            self._add([version])

    def _add(self, versions: list[RuleVersion]) -> None:
        if not versions:
            return
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

    def frame_at(self, times_ms: np.ndarray, rules: Sequence[str]) -> Any:
        """The `rule_params` rows of a batch of transactions at `times_ms`, the fields of
        `rules` only, as a pandas DataFrame."""
        import pandas as pd

        def frame_for(times: np.ndarray) -> Any:
            return pd.DataFrame(self.history.columns_at(times, rules))

        n = len(times_ms)
        key = tuple(rules)
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


class _Readers:
    """The readers of this Python worker process, one per settings text, each shared by the
    UDF instances that use it and stopped when the last of them closes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers: dict[str, tuple[RuleVersionReader, int]] = {}

    def acquire(self, settings_json: str) -> RuleVersionReader:
        with self._lock:
            reader, users = self._readers.get(settings_json, (None, 0))
            if reader is None:
                reader = RuleVersionReader(json.loads(settings_json))
                reader.start()
            self._readers[settings_json] = (reader, users + 1)
            return reader

    def release(self, settings_json: str) -> None:
        with self._lock:
            reader, users = self._readers.pop(settings_json, (None, 0))
            if reader is None:
                return
            if users > 1:
                self._readers[settings_json] = (reader, users - 1)
            else:
                reader.stop()


READERS = _Readers()


def json_rows(frame: Any) -> list[str]:
    """Each row of a `frame_at` frame as a JSON object of its fields (NaN as null); the rows of
    a batch are mostly one version, so each distinct row is encoded once."""
    encoded: dict[tuple[Any, ...], str] = {}
    out = []
    for values in frame.itertuples(index=False, name=None):
        text = encoded.get(values)
        if text is None:
            native = [None if v != v else v.item() if hasattr(v, "item") else v for v in values]
            row = dict(zip(frame.columns, native, strict=True))
            text = encoded[values] = json.dumps(row, allow_nan=False)
        out.append(text)
    return out


def _make_udf(rules: tuple[str, ...], as_json: bool = False) -> Any:
    """The vectorized UDF returning the `rule_params` ROW of `rules` (`as_json`: as JSON text,
    `json_rows`)."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import ScalarFunction, udf

    types = {
        "BOOLEAN": DataTypes.BOOLEAN(),
        "STRING": DataTypes.STRING(),
        "INT": DataTypes.INT(),
        "DOUBLE": DataTypes.DOUBLE(),
    }

    class RuleParameters(ScalarFunction):
        """rule_parameters(event_time TIMESTAMP(3)) -> the `rule_params` ROW of its rules, from
        the reader that its settings (job parameter `SETTINGS_PARAMETER`) describe."""

        def open(self, function_context: Any) -> None:
            # by module, not by closure: this class travels to the workers pickled, and the
            # process's readers (with their locks and threads) must not
            from udfs.rule_parameters import READERS, SETTINGS_PARAMETER

            settings = function_context.get_job_parameter(SETTINGS_PARAMETER, "")
            if not settings:
                raise ValueError(
                    f"job parameter {SETTINGS_PARAMETER!r} is not set: the job's script sets it "
                    "in pipeline.global-job-parameters (sql_templates/settings.sql.j2)"
                )
            self._settings = settings
            self._reader = READERS.acquire(settings)
            group = function_context.get_metric_group()
            for rule in rules:
                group.add_group("rule", rule).gauge(
                    "version_applied", lambda rule=rule: self._applied(rule)
                )
            group.gauge("rule_records_skipped", lambda: self._reader_count("skipped"))
            group.gauge("rule_reader_failures", lambda: self._reader_count("failures"))

        def _applied(self, rule: str) -> int:
            return -1 if self._reader is None else self._reader.applied(rule)

        def _reader_count(self, what: str) -> int:
            return 0 if self._reader is None else int(getattr(self._reader, what))

        def eval(self, rowtime: Any) -> Any:
            times = np.asarray(rowtime.values, dtype="datetime64[ms]").astype(np.int64)
            frame = self._reader.frame_at(times, rules)
            if as_json:
                import pandas as pd

                return pd.Series(json_rows(frame), dtype="object")
            return frame

        def is_deterministic(self) -> bool:
            return not as_json  # udf() below says why

        def close(self) -> None:
            if self._reader is not None:
                from udfs.rule_parameters import READERS

                READERS.release(self._settings)
                self._reader = None

    fields = columns(rules)
    result = DataTypes.ROW([DataTypes.FIELD(n, types[t]) for n, t in fields.items()])
    if as_json:
        result = DataTypes.STRING()
    return udf(
        RuleParameters(),
        input_types=[DataTypes.TIMESTAMP(3)],
        result_type=result,
        func_type="pandas",
        # one answer per event time and history; declared deterministic so the planner keeps
        # the shared scoring view planned once (the other UDFs run in its operator). The JSON
        # text is read by one JSON_VALUE per parameter: declared deterministic, the planner
        # would inline the call into each of them (a Python call per parameter and row)
        deterministic=not as_json,
    )


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """The UDFs of `UDF_RULES`, built on first access so plain imports do not load PyFlink."""
    if name in UDF_RULES or name in JSON_UDFS:
        fn = _make_udf(UDF_RULES[JSON_UDFS.get(name, name)], as_json=name in JSON_UDFS)
        globals()[name] = fn
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
