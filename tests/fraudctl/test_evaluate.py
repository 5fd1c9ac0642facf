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
    assert result["truth"] == {"scenarios": 5, "incomplete_scenarios": 1, "invalid_records": 2}


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
