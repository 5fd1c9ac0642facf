"""The job's view of the rule parameters: versions by event time, the supervised reader of
fraud_rules (udfs/rule_parameters.py), and the validation of a change (config/rule_changes.py).
The reader's Kafka consumer is a stand-in here; tests/jobs/test_rule_tuning_live.py runs the
real one against a broker that is killed and junk records on the topic."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from config.rule_changes import RuleChangeError, changed_parameters, initial_parameters
from config.rules import Rules
from tests.polling import wait_until
from udfs import rule_parameters as rp
from udfs.rule_parameters import ParameterHistory, RuleVersion, RuleVersionReader, columns

VELOCITY = {"enabled": True, "severity": "HIGH", "max_count": 2}


@pytest.fixture
def history() -> ParameterHistory:
    return ParameterHistory(initial_parameters(Rules()))


def test_without_any_change_every_transaction_gets_the_config(history) -> None:
    row = history.row_at(1_700_000_000_000)
    assert row["velocity_version"] == 0
    assert row["velocity_max_count"] == 3
    assert row["high_value_amount_over"] == 500.0
    assert row["risk_score_threshold"] == 0.8
    assert set(row) == set(columns())


def test_a_version_applies_from_its_effective_time_on(history) -> None:
    history.add(RuleVersion("velocity", 1, 1_000, VELOCITY))
    cols = {k: v.tolist() for k, v in history.columns_at([999, 1_000, 5_000]).items()}
    assert cols["velocity_version"] == [0, 1, 1]
    assert cols["velocity_max_count"] == [3, 2, 2]
    assert cols["high_value_version"] == [0, 0, 0]
    assert history.same_versions(1_000, 5_000) and not history.same_versions(999, 1_000)


def test_versions_are_ordered_by_effective_time_whatever_order_they_arrive_in(history) -> None:
    history.add(RuleVersion("velocity", 2, 2_000, {**VELOCITY, "max_count": 5}))
    history.add(RuleVersion("velocity", 1, 1_000, VELOCITY))
    assert history.columns_at([1_500, 2_500])["velocity_max_count"].tolist() == [2, 5]
    assert history.latest("velocity").version == 2


def test_a_record_round_trips_and_one_that_is_not_a_valid_version_is_refused() -> None:
    v = RuleVersion("velocity", 3, 42, {"max_count": 2}, changed_by="ana")
    assert RuleVersion.from_json(v.to_json()) == v
    refused = {
        "unknown rule": RuleVersion("nope", 1, 1, {}),
        "unknown parameters": RuleVersion("velocity", 1, 1, {"window": "1 h"}),
        "greater than 0": RuleVersion("velocity", 1, 1, {"max_count": 0}),
        "'LOW', 'MEDIUM', 'HIGH' or 'CRITICAL'": RuleVersion("velocity", 1, 1, {"severity": "x"}),
        "versions start at 1": RuleVersion("velocity", 0, 1, {"max_count": 2}),
    }
    for message, version in refused.items():
        with pytest.raises(ValueError, match=message):
            RuleVersion.from_json(version.to_json())
    with pytest.raises(ValueError, match="not a rule version"):
        RuleVersion.from_json(b"{not json")


def test_a_change_is_validated_like_the_config() -> None:
    rules = Rules()
    current = initial_parameters(rules)["velocity"]
    assert changed_parameters(rules, "velocity", current, {"max_count": "2"}) == {
        **current,
        "max_count": 2,
    }
    with pytest.raises(RuleChangeError, match=r"velocity\.max_count: Input should be greater"):
        changed_parameters(rules, "velocity", current, {"max_count": "0"})
    with pytest.raises(RuleChangeError, match="'LOW', 'MEDIUM', 'HIGH' or 'CRITICAL'"):
        changed_parameters(rules, "velocity", current, {"severity": "urgent"})
    with pytest.raises(RuleChangeError, match=r"structural.*fraudctl upgrade"):
        changed_parameters(rules, "velocity", current, {"window": "10 min"})
    with pytest.raises(RuleChangeError, match=r"no parameter 'speed'.*max_count"):
        changed_parameters(rules, "velocity", current, {"speed": "1"})
    with pytest.raises(RuleChangeError, match="unknown rule 'fast'"):
        changed_parameters(rules, "fast", {}, {"enabled": "false"})
    with pytest.raises(RuleChangeError, match="no change given"):
        changed_parameters(rules, "velocity", current, {})


def _reader() -> RuleVersionReader:
    return RuleVersionReader({"initial": initial_parameters(Rules()), "topic": None})


def test_a_batch_follows_a_change_within_and_after_it() -> None:
    reader = _reader()
    rules = ("velocity", "high_value")
    batch = np.arange(0, 10_000, 1_000, dtype=np.int64)
    assert reader.frame_at(batch, rules)["velocity_max_count"].tolist() == [3] * 10
    reader._add([RuleVersion("velocity", 1, 4_500, VELOCITY)])
    assert reader.frame_at(batch, rules)["velocity_max_count"].tolist() == [3] * 5 + [2] * 5
    later = reader.frame_at(batch + 20_000, rules)
    assert later["velocity_max_count"].tolist() == [2] * 10
    assert later["velocity_version"].tolist() == [1] * 10
    assert later["high_value_version"].tolist() == [0] * 10
    assert len(reader.frame_at(batch[:3] + 20_000, rules)) == 3
    assert reader.applied("velocity") == 1 and reader.applied("high_value") == 0


def test_the_json_rows_hold_each_field_with_its_type_and_follow_a_change() -> None:
    """What the per-transaction read of a lone rule gets (rp.json_rows): the same fields as the
    ROW, typed as JSON_VALUE's RETURNING clause reads them back, a change mid-batch included."""
    reader = _reader()
    reader._add([RuleVersion("high_value", 1, 4_500, {"amount_over": 400.5, "enabled": False})])
    batch = np.arange(0, 10_000, 1_000, dtype=np.int64)
    frame = reader.frame_at(batch, ("high_value",))
    rows = [json.loads(text) for text in rp.json_rows(frame)]
    assert rows[0] == {
        "high_value_version": 0,
        "high_value_enabled": True,
        "high_value_severity": "MEDIUM",
        "high_value_amount_over": 500.0,
    }
    assert rows[-1] == {**rows[0], "high_value_version": 1, "high_value_enabled": False,
                        "high_value_amount_over": 400.5}  # fmt: skip
    assert rows == [rows[0]] * 5 + [rows[-1]] * 5
    assert [type(v) for v in rows[0].values()] == [int, bool, str, float]
    nan = pd.DataFrame({"a": [float("nan")], "b": [None]})
    assert rp.json_rows(nan) == ['{"a": null, "b": null}']


def test_each_read_gets_its_own_rules_fields_and_both_follow_a_change() -> None:
    """The job's two Python operators share one reader, each asking for its own rules; their
    batches interleave, each keeps its rows between batches of one set of versions."""
    reader = _reader()
    batch = np.arange(0, 10_000, 1_000, dtype=np.int64)
    per_transaction = reader.frame_at(batch, ("high_value",))
    assert list(per_transaction.columns) == list(columns(["high_value"]))
    assert reader.frame_at(batch, ("velocity",))["velocity_max_count"].tolist() == [3] * 10
    reader._add([RuleVersion("high_value", 1, 4_500, {"amount_over": 400.0})])
    across = reader.frame_at(batch, ("high_value",))
    assert across["high_value_amount_over"].tolist() == [500.0] * 5 + [400.0] * 5
    assert reader.frame_at(batch, ("velocity",))["velocity_max_count"].tolist() == [3] * 10


class _Message:
    def __init__(self, value: bytes | None, offset: int, error: Any = None) -> None:
        self._value, self._offset, self._error = value, offset, error

    def value(self) -> bytes | None:
        return self._value

    def offset(self) -> int:
        return self._offset

    def error(self) -> Any:
        return self._error


class _Consumer:
    """A consumer of a one-partition topic whose polls follow `script`: a record's bytes, None
    (nothing yet), or an exception to raise. Counts the consumers made and closed."""

    made = 0
    closed = 0

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        type(self).made += 1

    def assignment(self) -> list[int]:
        return [0]

    def poll(self, timeout: float) -> _Message | None:
        if not self.script:
            threading.Event().wait(0.01)
            return None
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return None if step is None else _Message(step, 0)

    def close(self) -> None:
        type(self).closed += 1


def _following(monkeypatch, scripts: list[list[Any]]) -> RuleVersionReader:
    """A reader following a topic through consumers that play `scripts` one after the other
    (each failure makes the reader start over with the next)."""
    _Consumer.made = _Consumer.closed = 0
    remaining = list(scripts)
    monkeypatch.setattr(rp, "_read_to_end", lambda *a, **k: [])
    monkeypatch.setattr(
        RuleVersionReader, "_new_consumer", lambda self: _Consumer(remaining.pop(0))
    )
    monkeypatch.setattr(RuleVersionReader, "BACKOFF_S", (0.01, 0.05))
    reader = RuleVersionReader(
        {"initial": initial_parameters(Rules()), "topic": "fraud_rules", "bootstrap_servers": ""}
    )
    reader.start()
    return reader


def _version(n: int, max_count: int) -> bytes:
    return RuleVersion("velocity", n, 1_000 * n, {**VELOCITY, "max_count": max_count}).to_json()


def test_junk_on_the_topic_is_counted_and_skipped_and_the_reader_goes_on(monkeypatch) -> None:
    reader = _following(
        monkeypatch,
        [[b"{not json", _version(1, 2), json.dumps({"rule": "velocity"}).encode(),
          RuleVersion("velocity", 2, 2_000, {"max_count": -4}).to_json().encode(),
          _version(3, 5)]],
    )  # fmt: skip
    try:
        wait_until(lambda: reader.applied("velocity") == 3, 10, "version 3 applied")
        assert reader.skipped == 3
        assert reader.history.columns_at([1_500])["velocity_max_count"].tolist() == [2]
    finally:
        reader.stop()


def test_a_failing_consumer_is_replaced_and_the_reader_goes_on(monkeypatch) -> None:
    from confluent_kafka import KafkaError, KafkaException

    reader = _following(
        monkeypatch,
        [
            [_version(1, 2), RuntimeError("the consumer broke")],
            [KafkaException(KafkaError(KafkaError._TRANSPORT, fatal=True))],
            [_version(2, 6)],
        ],
    )
    try:
        wait_until(lambda: reader.applied("velocity") == 2, 10, "version 2 applied")
        assert reader.failures == 2
        assert _Consumer.closed == 2  # each broken consumer closed before the next
    finally:
        reader.stop()
    assert _Consumer.closed == 3
    assert not reader._thread.is_alive()


def test_the_udfs_of_one_worker_share_one_reader_until_the_last_closes(monkeypatch) -> None:
    started, stopped = [], []
    monkeypatch.setattr(RuleVersionReader, "start", lambda self: started.append(self))
    monkeypatch.setattr(RuleVersionReader, "stop", lambda self: stopped.append(self))
    settings = json.dumps({"initial": initial_parameters(Rules()), "topic": "fraud_rules"})
    readers = rp._Readers()
    first, second = readers.acquire(settings), readers.acquire(settings)
    assert first is second and started == [first]
    readers.release(settings)
    assert stopped == []
    readers.release(settings)
    assert stopped == [first]
    assert readers.acquire(settings) is not first  # a new job's UDF starts a new reader


class _Group:
    """A Flink metric group that records the gauges registered on it."""

    def __init__(self, gauges: dict[str, Any], path: str = "") -> None:
        self.gauges, self.path = gauges, path

    def add_group(self, key: str, value: str) -> _Group:
        return _Group(self.gauges, f"{self.path}{key}.{value}.")

    def gauge(self, name: str, fn: Any) -> None:
        self.gauges[self.path + name] = fn


class _Context:
    """The FunctionContext a Python worker gives `open()`: job parameters and metrics."""

    def __init__(self, parameters: dict[str, str]) -> None:
        self.parameters, self.gauges = parameters, {}

    def get_job_parameter(self, key: str, default: str) -> str:
        return self.parameters.get(key, default)

    def get_metric_group(self) -> _Group:
        return _Group(self.gauges)


def test_the_udf_holds_its_reader_from_open_to_close(monkeypatch) -> None:
    started, stopped = [], []
    monkeypatch.setattr(RuleVersionReader, "start", lambda self: started.append(self))
    monkeypatch.setattr(RuleVersionReader, "stop", lambda self: stopped.append(self))
    monkeypatch.setattr(rp, "READERS", rp._Readers())
    settings = json.dumps({"initial": initial_parameters(Rules()), "topic": None})
    fn = rp.counted_rule_parameters_udf._func
    context = _Context({rp.SETTINGS_PARAMETER: settings})
    fn.open(context)
    assert len(started) == 1 and stopped == []  # started before any row arrives
    assert context.gauges["rule.velocity.version_applied"]() == 0
    frame = fn.eval(pd.Series(np.array([0, 1], dtype="datetime64[ms]")))
    assert list(frame["velocity_max_count"]) == [Rules().velocity.max_count] * 2
    fn.close()
    assert stopped == started
    assert context.gauges["rule.velocity.version_applied"]() == -1  # no reader: nothing applied


def test_the_udf_without_its_job_parameter_fails_to_open_saying_why() -> None:
    fn = rp.counted_rule_parameters_udf._func
    with pytest.raises(ValueError, match=rp.SETTINGS_PARAMETER):
        fn.open(_Context({}))
