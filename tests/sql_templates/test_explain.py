"""Flink itself plans the whole rendered statement set (in-process, no cluster): a template typo,
a wrong type or an unsupported construct fails here."""

from __future__ import annotations

import json
import re

import pytest

from config import load_settings
from config.rules import rule_names
from jobs.cluster.submit import compile_job, explain
from jobs.sql.render import render_script


@pytest.fixture(scope="module")
def plan() -> str:
    return explain(load_settings(), render_script(load_settings(), python_files=""))


def test_flink_plans_every_sink_of_the_default_job(plan):
    sinks = [f"{rule}_alerts_kafka" for rule in rule_names()] + [
        "global_window_stats_kafka",
        "category_window_stats_kafka",
        "invalid_field_dead_letters_kafka",
        "unparsable_dead_letters_kafka",
        "late_event_dead_letters_kafka",
    ]
    for sink in sinks:
        assert f"Sink(table=[default_catalog.default_database.{sink}]" in plan


def test_rules_use_the_planned_operators(plan):
    optimized = plan.split("== Optimized Execution Plan ==", 1)[1]
    assert optimized.count("Match(partitionBy=[card_token]") == 1  # CARD_TESTING
    # GEO_HOP and IMPOSSIBLE_TRAVEL share one OVER operator pairing each transaction with the
    # card's previous one; VELOCITY and DEVICE_SHARING each have one over their over-limit
    # windows (the first of a run alerts)
    assert optimized.count("OverAggregate(partitionBy=[card_token]") == 2
    assert optimized.count("OverAggregate(partitionBy=[device_id]") == 1
    # the card's previous transaction is one LAG of a ROW (one accumulator per card, not one
    # per field)
    legs = re.search(
        r"OverAggregate\(partitionBy=\[card_token\], orderBy=\[rowtime ASC\].*", optimized
    )
    assert legs and legs.group(0).count("LAG(") == 1, legs and legs.group(0)
    assert re.search(r"HOP\(time_col=\[rowtime\w*\], size=\[5 min\], slide=\[1 min\]\)", optimized)
    assert re.search(r"TUMBLE\(time_col=\[rowtime\w*\], size=\[10 s\]\)", optimized)
    assert re.search(r"TUMBLE\(time_col=\[rowtime\w*\], size=\[1 min\]\)", optimized)
    # the cooldown: one keep-first de-duplication per rule, on arrival (no watermark wait)
    cooldowns = "Deduplicate(keep=[FirstRow], key=[entity_id, cooldown_period], order=[PROCTIME]"
    assert optimized.count(cooldowns) == len(rule_names())
    # re-deliveries: one keep-first de-duplication by transaction id
    assert optimized.count("Deduplicate(keep=[FirstRow], key=[transaction_id]") == 1
    assert "outputInsertOnly=[false]" not in optimized


def test_python_udfs_run_once_per_valid_transaction_in_each_read(plan):
    optimized = plan.split("== Optimized Execution Plan ==", 1)[1]
    # one Python operator for scoring in each read of the input (the per-transaction rule's
    # own and everything else's) and one for the DLQ masking; RISK_SCORE's model only with
    # scoring.enabled (below)
    assert optimized.count("PythonCalc(") == 3
    # each UDF once per row: the JSON parameters are declared non-deterministic so that the
    # planner does not inline a call into each JSON_VALUE reading them
    assert optimized.count("per_transaction_rule_parameters_json(") == 1
    assert optimized.count("risk_model(") == 0
    assert "card_behaviour" not in optimized
    # the weighted sum: RISK_SCORE's and the lake's
    assert optimized.count("risk_score(") == 1


def test_with_scoring_the_model_runs_once_per_row_after_the_cards_behaviour():
    s = load_settings(scoring={"enabled": True})
    optimized = explain(s, render_script(s, python_files="")).split(
        "== Optimized Execution Plan ==", 1
    )[1]
    assert optimized.count("PythonCalc(") == 4
    # declared non-deterministic, like the JSON parameters, for the same reason
    assert optimized.count("risk_model(") == 1
    # in the OVER operator that pairs each card's transactions (card_legs), not one of its own
    assert optimized.count("OverAggregate(partitionBy=[card_token]") == 2
    legs = re.search(
        r"OverAggregate\(partitionBy=\[card_token\], orderBy=\[rowtime ASC\].*", optimized
    )
    assert legs and "card_behaviour" in legs.group(0)


def _sinks_fed_by(plan: dict, source: str) -> set[str]:
    """The sink tables that the source table `source` of a compiled plan reaches."""

    def table(node: dict) -> str:
        ref = node.get("scanTableSource") or node.get("dynamicTableSink") or {}
        return ref.get("table", {}).get("identifier", "").split("`.`")[-1].strip("`")

    nodes = {n["id"]: n for n in plan["nodes"]}
    after: dict[int, list[int]] = {}
    for edge in plan["edges"]:
        after.setdefault(edge["source"], []).append(edge["target"])
    reached = [i for i, n in nodes.items() if "scanTableSource" in n and table(n) == source]
    seen = set(reached)
    while reached:
        for nxt in after.get(reached.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                reached.append(nxt)
    return {table(nodes[i]) for i in seen if "dynamicTableSink" in nodes[i]}


@pytest.mark.parametrize(
    ("read", "realtime_sinks"),
    [("own", {"high_value_alerts_kafka"}), ("shared", set())],
)
def test_the_per_transaction_rules_read_the_input_on_their_own_unless_set_to_share(
    read, realtime_sinks
):
    """A window fire holds back the source that feeds it (README, Benchmarks: latency): with
    job.per_transaction_read `own`, HIGH_VALUE gets a source of its own that feeds nothing
    else, and the other source does not feed it (RISK_SCORE, after the card's behaviour, reads
    the other)."""
    s = load_settings(job={"per_transaction_read": read})
    plan = json.loads(compile_job(s, render_script(s, python_files="")))
    assert _sinks_fed_by(plan, "transactions_realtime") == realtime_sinks
    shared = _sinks_fed_by(plan, "transactions")
    assert ("high_value_alerts_kafka" not in shared) is bool(realtime_sinks)
    assert {
        "velocity_alerts_kafka",
        "risk_score_alerts_kafka",
        "late_event_dead_letters_kafka",
    } <= shared


def test_flink_plans_window_rules_with_a_slide_of_more_than_99_seconds():
    s = load_settings(
        job={
            "rules": {
                r: {"window": "300 s", "slide": "150 s"} for r in ("velocity", "device_sharing")
            }
        }
    )
    plan = explain(s, render_script(s, python_files=""))
    optimized = plan.split("== Optimized Execution Plan ==", 1)[1]
    assert optimized.count("HOP(time_col=[rowtime_0], size=[5 min], slide=[150 s])") == 2


@pytest.mark.parametrize(
    "disabled",
    [
        # the scoring operator then has one reader: the de-duplication (it failed to plan,
        # NullPointerException in RemoteCalcSplitRule, when it read rule_params' fields)
        ("high_value", "risk_score"),
        ("velocity", "device_sharing", "geo_hop", "impossible_travel", "card_testing"),
        # one per-transaction rule alone on its own read, its parameters as JSON text
        # (render.arriving_params_json; reading the ROW's fields failed to plan as above)
        ("risk_score",),
        ("high_value",),
    ],
)
def test_flink_plans_the_job_with_only_some_of_its_rules(disabled):
    s = load_settings(job={"rules": {r: {"enabled": False} for r in disabled}})
    plan = explain(s, render_script(s, python_files=""))
    optimized = plan.split("== Optimized Execution Plan ==", 1)[1]
    for rule in rule_names():
        assert (f"{rule}_alerts_kafka]" in optimized) is (rule not in disabled), rule


def test_the_ids_seen_expire_after_the_dedup_horizon_and_other_state_after_state_ttl():
    s = load_settings(job={"dedup_horizon": "7 min", "state_ttl": "3 h"})
    plan = json.loads(compile_job(s, render_script(s, python_files="")))
    ttls: dict[str, list[str]] = {}
    for node in plan["nodes"]:
        if node["type"].startswith("stream-exec-deduplicate"):
            fields = node["outputType"]["fields"]
            key = ",".join(fields[i]["name"] for i in node["uniqueKeys"])
            ttls.setdefault(key, []).extend(state["ttl"] for state in node["state"])
    assert ttls["transaction_id"] == [f"{7 * 60_000} ms"]
    # the cooldowns: per alert, job.state_ttl
    assert ttls["entity_id,cooldown_period"] == [f"{3 * 3600_000} ms"] * len(rule_names())
