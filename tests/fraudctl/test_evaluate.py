"""`evaluate` on a crafted alert set and truth, against precision and recall worked out by hand.

Truth: S1, S2 velocity bursts (cards A, B), S3 card testing (card C), S4 device sharing
(device d_1), S5 impossible travel (card D, cut short: complete=false), two invalid records.

Alerts and their hand verdicts:
  A1 VELOCITY card A, shares t2          -> TP (S1)
  A2 VELOCITY card A, no txn, 22:04      -> TP (S1 by entity, 2 min after its span)
  A3 VELOCITY card B, no txn, 22:30      -> FP (S2's span + 5 min ends 22:17)
  A4 CARD_TESTING card C, shares t12     -> TP (S3)
  A5 HIGH_VALUE card C, shares t12       -> FP (no scenario expects HIGH_VALUE)
  A6 DEVICE_SHARING d_1, 22:31           -> TP (S4 by entity)
  A7 DEVICE_SHARING d_2                  -> FP
  A8 IMPOSSIBLE_TRAVEL card D, t18       -> TP (S5, incomplete but still not a false alarm)
  A9 VELOCITY card Z, shares t13 (of S4) -> FP (the rule differs from S4's)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fraudctl.evaluate import evaluate, read_truth


def sc(
    sid: str,
    stype: str,
    rule: str,
    etype: str,
    eid: str,
    txns: list[str],
    first: str,
    last: str,
    complete: bool = True,
) -> dict:
    return {
        "kind": "scenario",
        "scenario_id": sid,
        "scenario_type": stype,
        "expected_rule": rule,
        "entity_type": etype,
        "entity_id": eid,
        "card_last4": None,
        "user_id": None,
        "transaction_ids": txns,
        "first_event_time": f"2026-11-21T{first}:00.000Z",
        "last_event_time": f"2026-11-21T{last}:00.000Z",
        "complete": complete,
    }


TRUTH = [
    sc("S1", "velocity_burst", "VELOCITY", "card", "A", ["t1", "t2", "t3", "t4"], "22:00", "22:02"),
    sc("S2", "velocity_burst", "VELOCITY", "card", "B", ["t5", "t6", "t7", "t8"], "22:10", "22:12"),
    sc("S3", "card_testing", "CARD_TESTING", "card", "C", ["t9", "t12"], "22:20", "22:25"),
    sc("S4", "device_sharing", "DEVICE_SHARING", "device", "d_1", ["t13", "t16"], "22:30", "22:33"),
    sc(
        "S5",
        "impossible_travel",
        "IMPOSSIBLE_TRAVEL",
        "card",
        "D",
        ["t17", "t18"],
        "22:40",
        "22:55",
        complete=False,
    ),
    {"kind": "invalid", "invalid_kind": "not_json", "transaction_id": None, "payload_preview": "x"},
    {
        "kind": "invalid",
        "invalid_kind": "bad_amount",
        "transaction_id": "t0",
        "payload_preview": "",
    },
]


def al(aid: str, rule: str, etype: str, eid: str, txns: list[str], at: str) -> dict:
    return {
        "alert_id": aid,
        "rule": rule,
        "entity_type": etype,
        "entity_id": eid,
        "transaction_ids": txns,
        "event_time": f"2026-11-21T{at}:00.000Z",
    }


ALERTS = [
    al("A1", "VELOCITY", "card", "A", ["t2", "t3"], "22:02"),
    al("A2", "VELOCITY", "card", "A", [], "22:04"),
    al("A3", "VELOCITY", "card", "B", [], "22:30"),
    al("A4", "CARD_TESTING", "card", "C", ["t12"], "22:25"),
    al("A5", "HIGH_VALUE", "card", "C", ["t12"], "22:25"),
    al("A6", "DEVICE_SHARING", "device", "d_1", ["t99"], "22:31"),
    al("A7", "DEVICE_SHARING", "device", "d_2", [], "22:31"),
    al("A8", "IMPOSSIBLE_TRAVEL", "card", "D", ["t18"], "22:55"),
    al("A9", "VELOCITY", "card", "Z", ["t13"], "22:31"),
]

# rule: (alerts, tp, fp, scenarios, recalled, precision, recall)
EXPECTED_RULES = {
    "CARD_TESTING": (1, 1, 0, 1, 1, 1.0, 1.0),
    "DEVICE_SHARING": (2, 1, 1, 1, 1, 0.5, 1.0),
    "HIGH_VALUE": (1, 0, 1, 0, 0, 0.0, None),
    "IMPOSSIBLE_TRAVEL": (1, 1, 0, 0, 0, 1.0, None),
    "VELOCITY": (4, 2, 2, 2, 1, 0.5, 0.5),
}
EXPECTED_TYPES = {
    "card_testing": (1, 1, 0, 1, 1, 1.0, 1.0),
    "device_sharing": (2, 1, 1, 1, 1, 0.5, 1.0),
    "impossible_travel": (1, 1, 0, 0, 0, 1.0, None),
    "velocity_burst": (4, 2, 2, 2, 1, 0.5, 0.5),
}
COLS = ("alerts", "tp", "fp", "scenarios", "recalled", "precision", "recall")


def as_tuples(rows: list[dict], label: str) -> dict[str, tuple]:
    return {r[label]: tuple(r[c] for c in COLS) for r in rows}


def truth_lines() -> list[str]:
    return [json.dumps(t) for t in TRUTH]


def test_precision_and_recall_per_rule_match_the_hand_count() -> None:
    result = evaluate(ALERTS, read_truth(truth_lines()))
    assert as_tuples(result["by_rule"], "rule") == EXPECTED_RULES


def test_precision_and_recall_per_scenario_type_match_the_hand_count() -> None:
    result = evaluate(ALERTS, read_truth(truth_lines()))
    assert as_tuples(result["by_scenario_type"], "scenario_type") == EXPECTED_TYPES


def test_overall_row_and_truth_summary() -> None:
    result = evaluate(ALERTS, read_truth(truth_lines()))
    # 5 TP of 9 alerts; 3 of the 4 complete scenarios recalled (S2 missed)
    assert tuple(result["all"][c] for c in COLS) == (9, 5, 4, 4, 3, 0.5556, 0.75)
    assert result["truth"] == {
        "scenarios": 5, "incomplete_scenarios": 1, "invalid_records": 2, "lookalikes": 0,
    }  # fmt: skip


def test_entity_match_respects_the_slack() -> None:
    truth = read_truth(truth_lines())
    late = [al("X", "VELOCITY", "card", "B", [], "22:30")]
    assert evaluate(late, truth)["by_rule"][-1]["tp"] == 0
    from datetime import timedelta

    assert evaluate(late, truth, slack=timedelta(minutes=20))["by_rule"][-1]["tp"] == 1


def test_bad_truth_line_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="line 2"):
        read_truth(['{"kind": "invalid"}', "nope"])


def test_cli_reads_alerts_file_and_prints_json(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    truth.write_text("\n".join(truth_lines()) + "\n")
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("\n".join(json.dumps(a) for a in ALERTS) + "\n")
    fraudctl = Path(sys.executable).with_name("fraudctl")
    base = [str(fraudctl), "evaluate", "--truth", str(truth), "--alerts", str(alerts)]
    out = subprocess.run([*base, "--json"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert as_tuples(result["by_rule"], "rule") == EXPECTED_RULES
    table = subprocess.run(
        base, capture_output=True, text=True, check=True, env={"COLUMNS": "200", "PATH": ""}
    )
    assert "VELOCITY" in table.stdout and "0.5556" in table.stdout


def test_rules_without_ground_truth_are_counted_as_unlabelled() -> None:
    """A rule no producer scenario is labelled with (a rule added after the producer's
    scenarios): its alerts are neither TP nor FP, and are counted as unlabelled, in its row and
    in ALL."""
    risk = {
        "alert_id": "r1", "rule": "NEW_RULE", "entity_type": "card", "entity_id": "A",
        "transaction_ids": ["t1"], "event_time": "2026-11-21T22:01:00.000Z",
    }  # fmt: skip
    base = evaluate(ALERTS, read_truth(truth_lines()))
    with_risk = evaluate([*ALERTS, risk], read_truth(truth_lines()))
    row = next(r for r in with_risk["by_rule"] if r["rule"] == "NEW_RULE")
    assert (row["alerts"], row["tp"], row["fp"], row["unlabelled"]) == (1, 0, 0, 1)
    assert row["precision"] is None
    assert with_risk["all"] == {
        **base["all"],
        "alerts": base["all"]["alerts"] + 1,
        "unlabelled": base["all"]["unlabelled"] + 1,
    }


def test_alerts_outside_the_truths_period_are_not_judged() -> None:
    """An alert from another producer run (a day later) is neither TP nor FP by default."""
    from fraudctl.evaluate import within_truth_span

    other_run = {
        "alert_id": "x1", "rule": "VELOCITY", "entity_type": "card", "entity_id": "Q",
        "transaction_ids": ["zz"], "event_time": "2026-11-22T22:00:00.000Z",
    }  # fmt: skip
    truth = read_truth(truth_lines())
    kept = within_truth_span([*ALERTS, other_run], truth)
    assert other_run not in kept
    assert len(kept) == len(ALERTS)
    assert evaluate(kept, truth)["all"] == evaluate(ALERTS, truth)["all"]


def test_each_missed_scenario_is_explained() -> None:
    result = evaluate(ALERTS, read_truth(truth_lines()))
    assert [m["scenario_id"] for m in result["missed"]] == ["S2"]  # S5 is incomplete
    why = result["missed"][0]["why"]
    # A3 (VELOCITY, card B, 22:30) is 18 min after S2's last event, outside ± 5 min
    assert why.startswith("nearest VELOCITY alert about its entity is 18.0 min after")


def test_a_miss_without_any_alert_on_the_entity_says_so() -> None:
    alerts = [a for a in ALERTS if a["alert_id"] != "A3"]
    (missed,) = evaluate(alerts, read_truth(truth_lines()))["missed"]
    assert missed["why"] == "no alert of any rule about card B"
    other_rule = [*alerts, al("A10", "HIGH_VALUE", "card", "B", ["t5"], "22:11")]
    (missed,) = evaluate(other_rule, read_truth(truth_lines()))["missed"]
    assert missed["why"] == "alerts about its entity, but only of HIGH_VALUE"


def test_a_miss_whose_transactions_came_late_says_so() -> None:
    alerts = [a for a in ALERTS if a["alert_id"] != "A3"]
    (missed,) = evaluate(alerts, read_truth(truth_lines()), late_ids={"t6", "t7", "t99"})["missed"]
    assert missed["why"].startswith("2 of its 4 transactions arrived behind the watermark")


# ---- behavioural fraud (RISK_SCORE) and legit look-alikes --------------------------------------
#
# Truth: S6, S7 account takeovers (cards E, F), S8 an account drain (card G); look-alikes L1, L2
# travel (cards H, I), L3 new_phone (card J), L4 habitual_big_online (card K).
#
# RISK_SCORE alerts and their hand verdicts:
#   R1 card E, t20           -> TP (S6)
#   R2 card G, t31 (2nd txn) -> TP (S8)
#   R3 card H, t40           -> FP, flags L1 (travel)
#   R4 card J, t42           -> FP, flags L3 (new_phone)
#   R5 card Q, t99, 23:30    -> FP (no scenario, no look-alike)
#   R6 card J, t42 again     -> FP (same look-alike flagged twice counts once)
#   V1 VELOCITY card K, t43  -> FP of VELOCITY; not RISK_SCORE, so L4 is not flagged
# RISK_SCORE: 6 alerts, 2 TP, 4 FP -> precision 1/3; scenarios 3, recalled 2 (S7 missed).
# account_takeover: recall 1/2; account_drain: 1/1. Per type, precision counts every
# unmatched RISK_SCORE alert: account_takeover 1 / (1 + 4), account_drain 1 / (1 + 4).
# Look-alikes: travel 1 of 2, new_phone 1 of 1, habitual_big_online 0 of 1; ALL 2 of 4.


def la(lid: str, ltype: str, eid: str, txns: list[str], at: str) -> dict:
    return {
        "kind": "lookalike",
        "lookalike_id": lid,
        "lookalike_type": ltype,
        "entity_type": "card",
        "entity_id": eid,
        "card_last4": None,
        "user_id": None,
        "transaction_ids": txns,
        "first_event_time": f"2026-11-21T{at}:00.000Z",
        "last_event_time": f"2026-11-21T{at}:00.000Z",
        "complete": True,
    }


BEHAVIOUR_TRUTH = [
    sc("S6", "account_takeover", "RISK_SCORE", "card", "E", ["t20"], "23:00", "23:00"),
    sc("S7", "account_takeover", "RISK_SCORE", "card", "F", ["t21", "t22"], "23:05", "23:40"),
    sc("S8", "account_drain", "RISK_SCORE", "card", "G", ["t30", "t31", "t32"], "23:10", "23:55"),
    la("L1", "travel", "H", ["t40"], "23:12"),
    la("L2", "travel", "I", ["t41"], "23:14"),
    la("L3", "new_phone", "J", ["t42"], "23:16"),
    la("L4", "habitual_big_online", "K", ["t43"], "23:18"),
]
BEHAVIOUR_ALERTS = [
    al("R1", "RISK_SCORE", "card", "E", ["t20"], "23:00"),
    al("R2", "RISK_SCORE", "card", "G", ["t31"], "23:30"),
    al("R3", "RISK_SCORE", "card", "H", ["t40"], "23:12"),
    al("R4", "RISK_SCORE", "card", "J", ["t42"], "23:16"),
    al("R5", "RISK_SCORE", "card", "Q", ["t99"], "23:30"),
    al("R6", "RISK_SCORE", "card", "J", ["t42"], "23:16"),
    al("V1", "VELOCITY", "card", "K", ["t43"], "23:18"),
]


def _behaviour() -> dict:
    truth = read_truth([json.dumps(t) for t in BEHAVIOUR_TRUTH])
    return evaluate(BEHAVIOUR_ALERTS, truth)


def test_risk_score_recall_per_behavioural_scenario_type() -> None:
    result = _behaviour()
    rules = as_tuples(result["by_rule"], "rule")
    assert rules["RISK_SCORE"] == (6, 2, 4, 3, 2, 0.3333, 0.6667)
    assert rules["VELOCITY"] == (1, 0, 1, 0, 0, 0.0, None)
    types = as_tuples(result["by_scenario_type"], "scenario_type")
    assert types == {
        "account_drain": (5, 1, 4, 1, 1, 0.2, 1.0),
        "account_takeover": (5, 1, 4, 2, 1, 0.2, 0.5),
    }
    assert {r["scenario_type"]: r["expected_rule"] for r in result["by_scenario_type"]} == {
        "account_drain": "RISK_SCORE",
        "account_takeover": "RISK_SCORE",
    }
    assert [m["scenario_id"] for m in result["missed"]] == ["S7"]


def test_lookalikes_flagged_by_risk_score_per_type() -> None:
    result = _behaviour()
    assert result["lookalikes"]["rule"] == "RISK_SCORE"
    rows = {
        r["lookalike_type"]: (r["lookalikes"], r["flagged"], r["flagged_fraction"])
        for r in result["lookalikes"]["by_type"]
    }
    assert rows == {
        "habitual_big_online": (1, 0, 0.0),
        "new_phone": (1, 1, 1.0),
        "travel": (2, 1, 0.5),
        "ALL": (4, 2, 0.5),
    }
    assert result["truth"]["lookalikes"] == 4 and result["truth"]["scenarios"] == 3


def test_lookalikes_are_not_fraud() -> None:
    """Look-alikes are no scenarios: nothing to recall, and alerts about them are false
    positives; without look-alikes in the truth the section is empty."""
    result = _behaviour()
    assert result["all"]["scenarios"] == 3
    assert evaluate(ALERTS, read_truth(truth_lines()))["lookalikes"]["by_type"] == []


def test_lookalikes_widen_the_truths_period() -> None:
    from fraudctl.evaluate import within_truth_span

    truth = read_truth([json.dumps(la("L9", "travel", "H", ["t40"], "21:00"))])
    alert = al("R9", "RISK_SCORE", "card", "H", ["t40"], "21:00")
    assert within_truth_span([alert], truth) == [alert]


def test_cli_prints_the_lookalike_section(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    truth.write_text("\n".join(json.dumps(t) for t in BEHAVIOUR_TRUTH) + "\n")
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("\n".join(json.dumps(a) for a in BEHAVIOUR_ALERTS) + "\n")
    fraudctl = Path(sys.executable).with_name("fraudctl")
    base = [str(fraudctl), "evaluate", "--truth", str(truth), "--alerts", str(alerts)]
    out = subprocess.run([*base, "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["lookalikes"] == _behaviour()["lookalikes"]
    table = subprocess.run(
        base, capture_output=True, text=True, check=True, env={"COLUMNS": "200", "PATH": ""}
    )
    assert "flagged by RISK_SCORE" in table.stdout and "habitual_big_online" in table.stdout
    assert "4 legit look-alikes" in table.stdout
