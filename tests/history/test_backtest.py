"""`fraudctl backtest` over a lake of hand-written rows (tests/history/lake_rows.py): the
job's own rule SQL replayed in-process, with the parameters as they were and with a change."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from config import load_settings
from config.rule_changes import RuleChangeError, initial_parameters
from fraudctl.app import app
from fraudctl.evaluate import Truth, read_truth
from jobs.history import lake
from jobs.history.backtest import Change, parse_changes, run
from tests.history import lake_rows
from udfs.rule_parameters import ParameterHistory, RuleVersion

runner = CliRunner()
T0 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
RAISED_TO_800_AT = T0 + dt.timedelta(minutes=30)


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _rows() -> list[dict]:
    rows, n = [], 0

    def add(card: str, seconds: float, amount: str, late: bool = False) -> None:
        nonlocal n
        rows.append(lake_rows.row(f"t-{n}", card, _at(seconds), amount, late))
        n += 1

    for s in (0, 10, 20, 30):  # A: 4 in 30 s, over velocity's 3
        add("A", s, "20.00")
    for s in (0, 10, 20):  # L: 3 on time, and a 4th the live job found late
        add("L", s, "20.00")
    add("L", 30, "900.00", late=True)  # ... which high_value still judges (it reads every row)
    add("B", 100, "700.00")  # over 500, the limit then
    add("C", 3600, "700.00")  # under 800, the limit from 10:30 on
    for k in range(20):  # quiet cards, spread over two hours
        add(f"Q{k}", 300 + k * 300, "15.00")
    return rows


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    lake_rows.write(root, _rows())
    return load_settings(lake={"path": str(root)})


@pytest.fixture(scope="module")
def history(settings):
    history = ParameterHistory(initial_parameters(settings.job.rules))
    at_ms = int(RAISED_TO_800_AT.timestamp() * 1000)
    history.add(RuleVersion("high_value", 1, at_ms, {"amount_over": "800.00"}))
    return history


@pytest.fixture(scope="module")
def result(settings, history):
    changes = parse_changes(settings, ["high_value.amount_over=650", "velocity.max_count=4"])
    end = T0 + dt.timedelta(hours=3)
    return run(settings, T0, end, lake.transactions(settings, T0, end), changes, history)


def _cards(alerts: list[dict], rule: str) -> set[str]:
    return {a["entity_id"] for a in alerts if a["rule"] == rule}


def test_the_current_run_raises_what_the_live_job_raised(result):
    assert result.transactions == len(_rows())
    # L's late row is not counted by the windows, as the live job did not count it
    assert _cards(result.current, "VELOCITY") == {"tok-A"}
    # the version in force at each event time: C's 700 came after the limit went up to 800
    assert _cards(result.current, "HIGH_VALUE") == {"tok-B", "tok-L"}
    assert {a["rule"] for a in result.current} == {"VELOCITY", "HIGH_VALUE"}


def test_the_candidate_run_has_the_change_in_force_over_the_whole_range(result):
    assert _cards(result.candidate, "HIGH_VALUE") == {"tok-B", "tok-C", "tok-L"}
    assert _cards(result.candidate, "VELOCITY") == set()
    c_alert = next(a for a in result.candidate if a["entity_id"] == "tok-C")
    assert c_alert["rule_version"] == 1  # the change applies over the version then in force


def test_the_comparison_counts_alerts_added_and_removed_per_rule(result):
    by_rule = {r["rule"]: r for r in result.rules()}
    high, velocity = by_rule["HIGH_VALUE"], by_rule["VELOCITY"]
    assert (high["current"]["alerts"], high["candidate"]["alerts"]) == (2, 3)
    assert (high["added"], high["removed"]) == (1, 0)
    assert high["candidate"]["amount"] == pytest.approx(2300.0)
    assert velocity["candidate"]["alerts"] == 0
    assert velocity["removed"] == velocity["current"]["alerts"] > 0


def _scenario(rule: str, card: str, ids: list[str], first: float, last: float) -> str:
    """A line of the producer's truth file: a fraud scenario the rule is expected to catch."""
    return json.dumps(
        {
            "kind": "scenario",
            "scenario_id": f"{rule}-{card}",
            "scenario_type": rule.lower(),
            "expected_rule": rule,
            "entity_type": "card",
            "entity_id": f"tok-{card}",
            "transaction_ids": ids,
            "first_event_time": _at(first).isoformat(),
            "last_event_time": _at(last).isoformat(),
        }
    )


def _truth() -> Truth:
    # A's burst (t-0 .. t-3) is fraud, and so is C's 700 (t-9); B's and L's large ones are not
    return read_truth(
        [
            _scenario("VELOCITY", "A", ["t-0", "t-1", "t-2", "t-3"], 0, 30),
            _scenario("HIGH_VALUE", "C", ["t-9"], 3600, 3600),
        ]
    )


def test_labels_score_each_run_of_each_rule(result):
    by_rule = {r["rule"]: r for r in result.rules(_truth())}
    high, velocity = by_rule["HIGH_VALUE"], by_rule["VELOCITY"]
    # raising the limit's 800 to 650 catches C, and still flags B's and L's
    assert (high["current"]["recall"], high["candidate"]["recall"]) == (0.0, 1.0)
    assert (high["current"]["precision"], high["candidate"]["precision"]) == (0.0, 0.3333)
    # max_count 4 misses A's burst of four
    assert (velocity["current"]["precision"], velocity["current"]["recall"]) == (1.0, 1.0)
    assert (velocity["candidate"]["precision"], velocity["candidate"]["recall"]) == (None, 0.0)
    assert result.rules()[0]["current"]["recall"] is None  # no labels: no score


def test_the_json_document_has_the_summary_and_the_candidate_runs_alerts(result):
    document = json.loads(json.dumps(result.document(_truth()), default=str))
    assert document["transactions"] == len(_rows())
    high, velocity = document["changes"]
    assert (high["rule"], float(high["changes"]["amount_over"])) == ("high_value", 650.0)
    assert velocity == {"rule": "velocity", "changes": {"max_count": 4}}
    assert [r["rule"] for r in document["rules"]] == ["HIGH_VALUE", "VELOCITY"]
    assert document["rules"][0]["candidate"]["recall"] == 1.0
    alerts = document["alerts"]
    assert sorted(a["entity_id"] for a in alerts) == ["tok-B", "tok-C", "tok-L"]
    for alert in alerts:
        assert {"alert_id", "rule", "entity_id", "user_id", "transaction_ids"} <= alert.keys()
    c_alert = next(a for a in alerts if a["entity_id"] == "tok-C")
    assert (c_alert["user_id"], c_alert["transaction_ids"]) == ("user-C", ["t-9"])


def test_changes_are_validated_as_rules_set_validates_them(settings):
    assert parse_changes(settings, ["velocity.max_count=5"]) == [
        Change("velocity", {"max_count": 5})
    ]
    for bad, message in (
        ("velocity.max_count", "RULE.KEY=VALUE"),
        ("max_count=5", "RULE.KEY=VALUE"),
        ("velocity.max_count=zero", "max_count"),
        ("velocity.window=10 min", "window"),  # structural: changes with the job, not live
        ("nosuch.max_count=1", "nosuch"),
    ):
        with pytest.raises(RuleChangeError, match=message):
            parse_changes(settings, [bad])


def test_the_lake_summary_counts_what_each_table_holds(settings):
    tables = {t.table: t for t in lake.summary(settings)}
    assert tables["transactions"].rows == len(_rows())
    assert tables["transactions"].partitions == 2  # hours 10 and 11
    assert tables["transactions"].oldest == "2026-11-30T10:00:00Z"
    assert tables["dead_letters"].rows == 0


def test_the_transactions_of_a_range_come_sorted_by_event_time_and_only_from_it(settings):
    table = lake.transactions(settings, _at(5), _at(101))
    times = table["event_time"].to_pylist()
    assert times == sorted(times)
    assert len(times) == 3 + 2 + 1 + 1  # A's and L's after 5 s, and B's at 100 s
    assert table.column_names[-2:] == ["dt", "hr"]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--set", "velocity.max_count=0"], 2, "max_count"),
        (["--set", "velocity.nosuch=1"], 2, "no parameter 'nosuch'"),
        (["--set", "velocity=1"], 2, "RULE.KEY=VALUE"),
        (["--from", "2026-11-30T11:00", "--to", "2026-11-30T10:00"], 2, "must be after"),
        (["--from", "yesterday"], 2, "not an ISO-8601 time"),
        (["--from", "2026-11-01T00:00", "--to", "2026-11-02T00:00"], 1, "holds no transaction"),
    ],
)
def test_bad_input_is_a_clear_error_before_anything_runs(settings, args, code, message):
    base = ["backtest", "--from", "2026-11-30T00:00", "--to", "2026-12-01T00:00"]
    env = {"FRAUD_LAKE__PATH": settings.lake.path}
    result = runner.invoke(app, base + args, env=env)
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())


def test_a_lake_that_holds_nothing_yet_says_so(tmp_path):
    env = {"FRAUD_LAKE__PATH": str(tmp_path)}
    result = runner.invoke(
        app, ["backtest", "--from", "2026-11-30T00:00", "--to", "2026-12-01T00:00"], env=env
    )
    assert result.exit_code == 1
    assert "holds no transactions yet" in " ".join(result.output.split())
    shown = runner.invoke(app, ["lake", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert '"rows": 0' in shown.stdout
