"""The job's view of the rule parameters: versions by event time (udfs/rule_parameters.py) and
the validation of a change (config/rule_changes.py)."""

from __future__ import annotations

import json

import pytest

from config.job import Rules
from config.rule_changes import RuleChangeError, changed_parameters, initial_parameters
from udfs.rule_parameters import TUNABLE, ParameterHistory, RuleVersion, columns


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
    history.add(
        RuleVersion("velocity", 1, 1_000, {"enabled": True, "severity": "HIGH", "max_count": 2})
    )
    cols = {k: v.tolist() for k, v in history.columns_at([999, 1_000, 5_000]).items()}
    assert cols["velocity_version"] == [0, 1, 1]
    assert cols["velocity_max_count"] == [3, 2, 2]
    assert cols["high_value_version"] == [0, 0, 0]
    assert history.same_versions(1_000, 5_000) and not history.same_versions(999, 1_000)


def test_versions_are_ordered_by_effective_time_whatever_order_they_arrive_in(history) -> None:
    full = {"enabled": True, "severity": "HIGH"}
    history.add(RuleVersion("velocity", 2, 2_000, {**full, "max_count": 5}))
    history.add(RuleVersion("velocity", 1, 1_000, {**full, "max_count": 2}))
    assert history.columns_at([1_500, 2_500])["velocity_max_count"].tolist() == [2, 5]
    assert history.latest("velocity").version == 2


def test_a_record_round_trips_and_a_bad_one_is_refused() -> None:
    v = RuleVersion("velocity", 3, 42, {"max_count": 2}, changed_by="ana")
    assert RuleVersion.from_json(v.to_json()) == v
    with pytest.raises(ValueError, match="unknown rule"):
        RuleVersion.from_json(RuleVersion("nope", 1, 1, {}).to_json())
    with pytest.raises(ValueError, match="unknown parameters"):
        RuleVersion.from_json(RuleVersion("velocity", 1, 1, {"window": "1 h"}).to_json())
    with pytest.raises(ValueError, match="not a rule version"):
        RuleVersion.from_json(b"{not json")


def test_every_run_time_parameter_is_a_config_field_of_its_rule() -> None:
    for rule, keys in TUNABLE.items():
        assert set(keys) <= set(type(getattr(Rules(), rule)).model_fields), rule


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


def test_the_job_side_batch_follows_a_change_within_and_after_a_batch() -> None:
    import numpy as np

    from udfs.rule_parameters import TopicFollower

    follower = TopicFollower({"initial": initial_parameters(Rules()), "topic": None})
    batch = np.arange(0, 10_000, 1_000, dtype=np.int64)
    assert follower.frame_at(batch)["velocity_max_count"].tolist() == [3] * 10
    follower._add([RuleVersion("velocity", 1, 4_500, {"max_count": 2})])
    assert follower.frame_at(batch)["velocity_max_count"].tolist() == [3] * 5 + [2] * 5
    later = batch + 20_000
    frame = follower.frame_at(later)
    assert frame["velocity_max_count"].tolist() == [2] * 10
    assert frame["velocity_version"].tolist() == [1] * 10
    assert frame["high_value_version"].tolist() == [0] * 10
    assert len(follower.frame_at(later[:3])) == 3


def test_two_readers_asking_for_their_own_columns_each_follow_a_change() -> None:
    """The job's two Python operators share one follower, each asking for its rules' columns;
    their batches interleave, and each keeps its rows between batches of one set of versions."""
    import numpy as np

    from udfs.rule_parameters import TopicFollower

    follower = TopicFollower({"initial": initial_parameters(Rules()), "topic": None})
    per_transaction = ["high_value_version", "high_value_amount_over"]
    counted = ["velocity_max_count"]
    batch = np.arange(0, 10_000, 1_000, dtype=np.int64)
    assert list(follower.frame_at(batch, per_transaction).columns) == per_transaction
    assert follower.frame_at(batch, counted)["velocity_max_count"].tolist() == [3] * 10
    assert (
        follower.frame_at(batch[:4], per_transaction)["high_value_amount_over"].tolist()
        == [500.0] * 4
    )
    follower._add([RuleVersion("high_value", 1, 4_500, {"amount_over": 400.0})])
    later = batch + 20_000
    assert (
        follower.frame_at(later, per_transaction)["high_value_amount_over"].tolist() == [400.0] * 10
    )
    assert follower.frame_at(later, counted)["velocity_max_count"].tolist() == [3] * 10
    across = follower.frame_at(batch, per_transaction)
    assert across["high_value_version"].tolist() == [0] * 5 + [1] * 5
    assert list(follower.frame_at(later[:2]).columns) == list(columns())


def test_each_scoring_gets_the_parameters_of_its_own_rules_only() -> None:
    """The per-transaction rules' read and the others' each carry back from Python only the
    fields of their rules; together they are every field, each once."""
    import pandas as pd

    from udfs.rule_parameters import PER_TRANSACTION_RULES, UDF_RULES, _parameters_batch

    settings = json.dumps({"initial": initial_parameters(Rules()), "topic": None})
    times = pd.Series(pd.to_datetime([1_000, 2_000], unit="ms"))
    per_transaction = columns(UDF_RULES["per_transaction_rule_parameters_udf"])
    counted = columns(UDF_RULES["counted_rule_parameters_udf"])
    assert set(per_transaction) == set(columns(PER_TRANSACTION_RULES))
    assert sorted([*per_transaction, *counted]) == sorted(columns())
    frame = _parameters_batch(times, settings, names=list(per_transaction))
    assert list(frame.columns) == list(per_transaction)
    assert frame["high_value_amount_over"].tolist() == [500.0, 500.0]
    assert list(_parameters_batch(times, settings).columns) == list(columns())
