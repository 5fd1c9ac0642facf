"""The benchmark harness's bookkeeping (benchmarks/run.py); the benchmarks themselves are not
tests and are not run here."""

from __future__ import annotations

import json

import pytest

from benchmarks import run


def test_last_json_finds_the_final_indented_dump_after_other_output():
    text = 'progress 1\n{"a": 1}\nmore\n{\n  "b": 2,\n  "c": [1, 2]\n}\nwritten to x.json\n'
    assert run.last_json(text) == {"b": 2, "c": [1, 2]}
    assert run.last_json("no json here") is None


def test_summaries_of_each_step_become_one_row_each(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    sink = next(s for s in run.STEPS if s.name == "sink")
    line = run.summarize("sink", {"insert_many_ceiling_docs_per_s": 6141, "sink_docs_per_s": 3634})
    run.write_summary(sink, False, line, 0.0)
    md = run.results_markdown(False)
    assert "| sink | `python -m benchmarks.sink_throughput --count 50000` |" in md
    assert "sink_docs_per_s: 3,634 docs/s" in md and "1970-01-01 00:00 UTC" in md
    assert "| replay |" not in md  # a step never run has no row


def test_from_logs_summarises_the_last_log_of_a_step(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    p = {"n": 9, "p50_s": 7.5, "p99_s": 21.0}
    summary = {
        "mode": "latency",
        "rate_eps": 2000.0,
        "delivery_guarantee": "at-least-once",
        "to_kafka": {
            "all_rules": p,
            "per_rule": {"HIGH_VALUE": {"n": 9, "p50_s": 0.3, "p99_s": 0.6}},
        },
        "to_mongo": {
            "all_rules": p,
            "per_rule": {"HIGH_VALUE": {"n": 9, "p50_s": 0.8, "p99_s": 1.2}},
        },
    }
    (tmp_path / "latency-2k.log").write_text(
        "sent 120,000 events\n" + json.dumps(summary, indent=2)
    )
    monkeypatch.setattr("sys.argv", ["run", "--from-logs"])
    run.main()
    md = (tmp_path / "RESULTS.md").read_text()  # beside the logs, in benchmarks/results/
    assert "2000.0 events/s, at-least-once: p50/p99 to Kafka 7.5/21.0 s over 9 alerts" in md
    assert "HIGH_VALUE 0.3/0.6 s (Mongo 0.8/1.2)" in md
