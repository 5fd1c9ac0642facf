"""The ids seen get job.dedup_horizon as their TTL in the compiled plan, nothing else does."""

from __future__ import annotations

import json

from jobs.cluster.submit import with_dedup_horizon


def _dedup(node_id: int, keys: list[str], ttl: str = "1 d") -> dict:
    fields = [{"name": n, "fieldType": "STRING"} for n in ("transaction_id", "entity_id", "x")]
    return {
        "id": node_id,
        "type": "stream-exec-deduplicate_1",
        "uniqueKeys": [[f["name"] for f in fields].index(k) for k in keys],
        "state": [{"index": 0, "ttl": ttl, "name": "deduplicateState"}],
        "outputType": {"type": "ROW", "fields": fields},
    }


def test_only_the_deduplication_by_transaction_id_alone_gets_the_horizon():
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
    out, changed = with_dedup_horizon(json.dumps(plan), 600_000)
    nodes = json.loads(out)["nodes"]
    assert changed == 1
    assert [s["ttl"] for n in nodes[:3] for s in n["state"]] == ["600000 ms", "1 d", "1 d"]
    assert nodes[3] == plan["nodes"][3]


def test_a_plan_without_it_is_reported_as_such():
    plan = {"nodes": [_dedup(1, ["entity_id"])], "edges": []}
    assert with_dedup_horizon(json.dumps(plan), 1000)[1] == 0
