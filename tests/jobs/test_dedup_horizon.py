"""In the compiled plan the ids seen get job.dedup_horizon as their TTL, every other operator
that declares state job.state_ttl."""

from __future__ import annotations

import json

from jobs.cluster.submit import with_state_ttls


def _dedup(node_id: int, keys: list[str], ttl: str = "1 d") -> dict:
    fields = [{"name": n, "fieldType": "STRING"} for n in ("transaction_id", "entity_id", "x")]
    return {
        "id": node_id,
        "type": "stream-exec-deduplicate_1",
        "uniqueKeys": [[f["name"] for f in fields].index(k) for k in keys],
        "state": [{"index": 0, "ttl": ttl, "name": "deduplicateState"}],
        "outputType": {"type": "ROW", "fields": fields},
    }


def test_only_the_deduplication_by_transaction_id_alone_gets_the_horizon_the_rest_the_ttl():
    plan = {
        "flinkVersion": "2.2",
        "nodes": [
            _dedup(1, ["transaction_id"]),
            _dedup(2, ["entity_id"]),
            _dedup(3, ["transaction_id", "x"]),
            {"id": 4, "type": "stream-exec-calc_1", "outputType": {"fields": []}},
        ],
        "edges": [],
    }
    out, changed = with_state_ttls(json.dumps(plan), 86_400_000, 600_000)
    nodes = json.loads(out)["nodes"]
    assert changed == 1
    assert [s["ttl"] for n in nodes[:3] for s in n["state"]] == [
        "600000 ms",
        "86400000 ms",
        "86400000 ms",
    ]
    assert nodes[3] == plan["nodes"][3]


def test_a_plan_without_it_is_reported_as_such():
    plan = {"nodes": [_dedup(1, ["entity_id"])], "edges": []}
    assert with_state_ttls(json.dumps(plan), 1000, 1000)[1] == 0


def test_the_job_keeps_a_cards_profile_for_the_horizon_and_the_rest_for_the_state_ttl():
    # an OVER operator (a card's behaviour profile) declares no state of its own in a compiled
    # plan: the job's TTL is the profile's horizon, every operator that declares state gets its own
    from config import load_settings
    from jobs.cluster.submit import compile_job
    from jobs.sql.render import render_script

    s = load_settings(job={"state_ttl": "2 h"}, scoring={"profile_horizon": "3 d"})
    script = render_script(s, python_files="")
    assert "SET 'table.exec.state.ttl' = '3 d';" in script
    plan = json.loads(compile_job(s, script))
    ttls = [state["ttl"] for n in plan["nodes"] for state in n.get("state", [])]
    assert set(ttls) == {"7200000 ms", "600000 ms"}
    assert not any("state" in n for n in plan["nodes"] if "over-aggregate" in n["type"])
