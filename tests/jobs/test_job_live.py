"""The real job on the real stack: crafted input in, alerts / window stats / DLQ out.

One crafted input (tests/jobs/crafted.py) holds one hit per rule and bad records between valid
ones: the wiring, delivery and determinism of the whole job (each rule's logic is in its
given/expect cases, tests/rules/). It is produced into three fresh topic sets and three jobs
run at once, so the whole module costs three job submissions:
- `heap`: the job as configured by default, its state on the TaskManager heap;
- `replay`: the same again, for the alert_id determinism check;
- `rocksdb`: the job with `flink.state_backend: rocksdb` (state larger than memory). RocksDB
  keeps keys, accumulators and timers serialized where the heap keeps objects, so the window
  and pattern operators take other code paths there (Flink has had wrong window results on one
  of them, FLINK-39589): every test of a single run runs on `heap` and on `rocksdb`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from config import Settings
from config.rules import rule_names
from jobs.history import lake
from stack.layout import Layout
from tests.jobs.crafted import Crafted, build, expected_window_stats
from tests.jobs.live_job import LiveJob
from tests.polling import wait_until
from udfs.card_token import card_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class Run:
    """One job run's outputs."""

    def __init__(self, job: LiveJob, crafted: Crafted) -> None:
        self.job = job
        self.crafted = crafted
        self.alerts: list[dict[str, Any]] = []
        self.window_stats: list[dict[str, Any]] = []
        self.dlq: list[dict[str, Any]] = []
        self.lake_dead_letters: list[dict[str, Any]] = []
        self.load: list[dict[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self.state_by_vertex: list[dict[str, Any]] = []
        self.state_backend = ""
        self.jvm: dict[str, dict[str, float]] = {}
        self.jobmanager_heap = 0.0


def _run(base: Settings, crafted: Crafted, flink: dict[str, Any] | None = None) -> Run:
    """The crafted input through one job (`flink`: more of its config's `flink` section)."""
    job = LiveJob.create(base, uuid.uuid4().hex[:10], flink=flink)
    run = Run(job, crafted)
    try:
        job.produce(crafted.records)
        job.start()
        run.state_backend = job.client.state_backend(job.job_id)
        topics = job.settings.kafka.topics
        n_alerts = sum(crafted.expected_alerts.values())
        n_dlq = sum(crafted.expected_dlq.values())
        # every alert but the late transaction's: the last ones need the flush's watermark, so
        # once they are read, the late transaction is behind the watermark when it arrives
        n_late = len(crafted.late_records)
        job.read(topics.fraud_alerts, lambda m: len(m) >= n_alerts - n_late, 240)
        job.produce(crafted.late_records)
        # settle: keep reading a few seconds after the expected count arrived, so an extra
        # alert would be seen
        run.alerts = job.read(topics.fraud_alerts, lambda m: len(m) >= n_alerts, 240, 8)
        run.dlq = job.read(topics.dlq, lambda m: len(m) >= n_dlq, 60, 4)
        # the lake's copy, committed with the checkpoints (every 2 s here)
        run.lake_dead_letters = wait_until(
            lambda: _lake_dead_letters(job.settings, n_dlq),
            60,
            "every dead letter in the lake",
            every_s=1,
        )
        n_stats = len(expected_window_stats(crafted, lambda x: x))
        run.window_stats = job.read(topics.window_stats, lambda m: len(m) >= n_stats, 60, 4)
        # the web UI's per-vertex numbers, once the metric fetcher has seen the source's output
        run.load = wait_until(
            lambda: (
                [v for v in job.client.vertex_load(job.job_id) if v["records_out"] > 0]
                and job.client.vertex_load(job.job_id)
            ),
            60,
            "vertex metrics of the running job",
            every_s=2,
        )
        # checkpoints every 2 s here; the latency benchmark lines stalls up with this history
        run.checkpoints = wait_until(
            lambda: [
                c for c in job.client.checkpoint_history(job.job_id) if c["status"] == "COMPLETED"
            ],
            60,
            "a completed checkpoint in the job's history",
            every_s=1,
        )
        run.state_by_vertex = job.client.checkpoint_state_by_vertex(
            job.job_id, run.checkpoints[-1]["id"]
        )
        run.jvm = job.client.taskmanager_jvm()
        run.jobmanager_heap = job.client.jobmanager_heap_used()
    finally:
        job.close()
    return run


def _lake_dead_letters(settings: Settings, expected: int) -> list[dict[str, Any]] | None:
    """The dead letters the lake has committed, once there are `expected` of them."""
    data = lake.dataset(settings, "dead_letters")
    rows = [] if data is None else data.to_table(columns=["reason", "payload"]).to_pylist()
    return rows if len(rows) >= expected else None


# each run's `flink` config overrides
RUNS: dict[str, dict[str, Any] | None] = {
    "heap": None,
    "replay": None,
    "rocksdb": {"state_backend": "rocksdb"},
}
# the name Flink gives each run's state backend
STATE_BACKENDS = {"heap": "HashMapStateBackend", "rocksdb": "EmbeddedRocksDBStateBackend"}


@pytest.fixture(scope="module")
def runs(live_stack: Settings) -> Iterator[dict[str, Run]]:
    crafted = build()
    with ThreadPoolExecutor(len(RUNS)) as pool:
        outputs = pool.map(lambda flink: _run(live_stack, crafted, flink), RUNS.values())
        done = dict(zip(RUNS, outputs, strict=True))
    yield done
    for r in done.values():
        r.job.delete_topics()


@pytest.fixture(scope="module", params=list(STATE_BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def run(runs: dict[str, Run], backend: str) -> Run:
    return runs[backend]


def test_each_run_keeps_its_state_where_its_config_says(run, backend):
    assert run.state_backend == STATE_BACKENDS[backend]


@pytest.fixture(scope="module")
def token(live_stack: Settings):
    key = live_stack.card_token_secret()
    return lambda number: card_token(number, key)


def _entity(crafted_entity: str, token) -> str:
    return crafted_entity if crafted_entity.startswith("d-") else token(crafted_entity)


def _alert_counts(run: Run) -> Counter:
    return Counter((a["value"]["rule"], a["value"]["entity_id"]) for a in run.alerts)


@pytest.mark.parametrize("rule", [r.upper() for r in rule_names()])
def test_each_rule_alerts_on_its_hit_from_kafka_to_kafka(run, token, rule):
    expected = Counter(
        {
            (r, _entity(e, token)): n
            for (r, e), n in run.crafted.expected_alerts.items()
            if r == rule
        }
    )
    got = Counter({k: n for k, n in _alert_counts(run).items() if k[0] == rule})
    assert got == expected


def test_no_alert_beyond_the_expected_ones(run, token):
    expected = Counter(
        {(r, _entity(e, token)): n for (r, e), n in run.crafted.expected_alerts.items()}
    )
    assert _alert_counts(run) == expected


def test_alerts_have_the_contract_shape(run):
    for msg in run.alerts:
        a = msg["value"]
        assert msg["key"] == a["entity_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", a["alert_id"])
        assert a["severity"] in {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
        assert a["entity_type"] == ("device" if a["rule"] == "DEVICE_SHARING" else "card")
        for ts in ("window_start", "window_end", "event_time", "detected_at"):
            assert ISO_MS.match(a[ts]), (ts, a[ts])
        assert a["transaction_ids"] and all(isinstance(t, str) for t in a["transaction_ids"])
        assert isinstance(a["details"], dict)
        if a["entity_type"] == "card":
            assert a["card_token"] == a["entity_id"]
            assert re.fullmatch(r"\d{4}", a["card_last4"])
        if a["rule"] == "RISK_SCORE":
            assert 0.8 <= a["score"] <= 1.0
            assert a["severity"] == "HIGH"  # 0.9 < critical_at 0.95
    assert len({m["value"]["alert_id"] for m in run.alerts}) == len(run.alerts)


def test_a_re_delivered_transaction_counts_once(run, token):
    velocity = [a["value"] for a in run.alerts if a["value"]["rule"] == "VELOCITY"]
    assert velocity, "no VELOCITY alert"
    for alert in velocity:
        ids = alert["transaction_ids"]
        assert len(ids) == len(set(ids)) == alert["details"]["count"] == 4, alert


def test_a_late_transaction_is_judged_per_transaction_and_is_a_dead_letter(run, token):
    (late,) = [r.value for r in run.crafted.late_records]
    letters = [m["value"] for m in run.dlq if m["value"]["reason"] == "late_event"]
    assert [d["payload"]["transaction_id"] for d in letters] == [late["transaction_id"]]
    assert letters[0]["payload"]["card_token"] == token(late["card_number"])
    assert letters[0]["payload"]["event_time"] == late["event_time"]
    high_value = [
        a["value"]
        for a in run.alerts
        if a["value"]["rule"] == "HIGH_VALUE"
        and a["value"]["transaction_ids"] == [late["transaction_id"]]
    ]
    assert len(high_value) == 1


def test_replaying_the_same_input_into_fresh_topics_gives_the_same_alert_ids(runs):
    first, replay = runs["heap"], runs["replay"]
    assert {a["value"]["alert_id"] for a in first.alerts} == {
        a["value"]["alert_id"] for a in replay.alerts
    }
    assert len(first.alerts) == len(replay.alerts) > 0


def test_window_stats_equal_an_independent_python_computation(run, token):
    expected = expected_window_stats(run.crafted, token)
    got = {m["value"]["stat_id"]: m["value"] for m in run.window_stats}
    assert set(got) == set(expected)
    for stat_id, exp in expected.items():
        g = got[stat_id]
        for k in ("granularity", "group", "window_start", "window_end", "txn_count"):
            assert g[k] == exp[k], (stat_id, k)
        assert g["distinct_cards"] == exp["distinct_cards"], stat_id
        for k in ("total_amount", "min_amount", "max_amount", "avg_amount"):
            assert g[k] == pytest.approx(exp[k], rel=1e-9, abs=1e-9), (stat_id, k)
        assert [m["key"] for m in run.window_stats if m["value"]["stat_id"] == stat_id] == [stat_id]


def test_bad_records_land_in_the_dlq_with_the_right_reason(run):
    assert Counter(m["value"]["reason"] for m in run.dlq) == run.crafted.expected_dlq
    for m in run.dlq:
        d = m["value"]
        assert isinstance(d["kafka_offset"], int) and d["kafka_partition"] == 0
        assert ISO_MS.match(d["detected_at"])
        if isinstance(d["payload"], dict) and d["reason"] != "missing_field:card_number":
            assert re.fullmatch(r"\d{4}", d["payload"]["card_last4"])
            assert re.fullmatch(r"[0-9a-f]{32}", d["payload"]["card_token"])


def test_the_lake_keeps_every_dead_letter_once_and_masked(run):
    assert Counter(r["reason"] for r in run.lake_dead_letters) == run.crafted.expected_dlq
    payloads = "\n".join(r["payload"] for r in run.lake_dead_letters)
    assert [n for n in run.crafted.card_numbers if n in payloads] == []


def test_fraudctl_dlq_counts_the_dead_letters_by_reason(run):
    counted = json.loads(run.job.fraudctl("dlq", "--json"))
    by_reason = {r["reason"]: r["records"] for r in counted["by_reason"]}
    assert by_reason == dict(run.crafted.expected_dlq)
    assert counted["total"] == sum(run.crafted.expected_dlq.values())


def test_valid_records_around_bad_ones_are_still_detected(run, token):
    # the VELOCITY card whose 4 transactions surround the bad records (one with epoch-ms time)
    dlq_card = max(
        (e for (r, e) in run.crafted.expected_alerts if r == "VELOCITY"),
        key=lambda e: int(e),
    )
    assert ("VELOCITY", token(dlq_card)) in _alert_counts(run)


def test_no_raw_card_number_in_any_output_topic(run):
    topics = run.job.settings.kafka.topics
    blobs = b"\n".join(
        b"\n".join(run.job.raw_topic_bytes(t))
        for t in (topics.fraud_alerts, topics.window_stats, topics.dlq)
    )
    assert blobs, "nothing was read back"
    leaked = [n for n in run.crafted.card_numbers if n.encode() in blobs]
    assert leaked == []


def test_the_web_ui_shows_one_sink_per_rule_with_its_load(run):
    names = [v["name"] for v in run.load]
    for rule in rule_names():
        sink = f"{rule}_alerts_kafka"
        assert any(f"{sink}[" in n for n in names), f"no vertex writes {sink}"
    assert all(0.0 <= v["busy"] <= 1.0 and 0.0 <= v["backpressured"] <= 1.0 for v in run.load)
    source = next(v for v in run.load if v["name"].startswith("Source: transactions["))
    assert source["records_out"] > 0


def test_the_checkpoint_history_lists_completed_checkpoints_oldest_first(run):
    ids = [c["id"] for c in run.checkpoints]
    assert ids == sorted(ids)
    assert all(c["trigger_ms"] > 0 and c["duration_ms"] >= 0 for c in run.checkpoints)
    assert run.checkpoints[-1]["state_size"] > 0, "the job keeps keyed state: it is checkpointed"


def test_the_taskmanagers_report_their_heap_and_garbage_collections(run):
    # what the benchmarks' LoadSampler.memory sums up: a TaskManager that has run a job has
    # collected its young generation at least once
    assert run.jvm, "no TaskManager"
    for tm in run.jvm.values():
        assert 0 < tm["heap_used"] <= tm["heap_max"]
        young = [k for k in tm if k.endswith(".count") and "Young" in k]
        assert young, sorted(tm)
        assert all(tm[k] >= 1 for k in young)
        assert all(tm[k.removesuffix(".count") + ".ms"] >= 0 for k in young)


def test_the_jobmanager_reports_its_heap(run):
    # what benchmarks/memory_soak.py samples beside the TaskManagers' heap; the local stack's
    # JobManager has 1g of process memory, so its heap in use is between 1 MB and 1 GB
    assert 2**20 < run.jobmanager_heap < 2**30


def test_the_checkpointed_state_is_broken_down_by_the_operators_that_hold_it(run):
    sizes = [v["state_size"] for v in run.state_by_vertex]
    assert sizes == sorted(sizes, reverse=True), "largest first"
    assert sum(sizes) == run.checkpoints[-1]["state_size"], "the parts of that one checkpoint"
    holders = [v["vertex"] for v in run.state_by_vertex if v["state_size"] > 0]
    # the transaction-id de-duplication and the HOP windows keep keyed state per record
    assert any(name.startswith("Deduplicate") for name in holders), holders
    assert any(name.startswith("WindowAggregate") for name in holders), holders


def test_the_card_token_key_reaches_no_log_of_the_stack_when_the_jobs_stop(
    runs: dict[str, Run], live_stack: Settings
):
    # Apache Beam logs each Python worker's environment (the TaskManager's) when its job stops:
    # the TaskManager holds the key as a file name, and that logger logs only errors
    for r in runs.values():
        wait_until(
            lambda r=r: r.job.client.job_state(r.job.job_id) == "CANCELED",
            120,
            f"job {r.job.job_id} cancelled",
        )
    key = live_stack.card_token_secret()
    logs = Layout.from_settings(live_stack).logs
    # the running daemons' files; `name.log.N` are rotated ones of earlier stacks
    current = [p for p in logs.iterdir() if p.is_file() and not p.suffix[1:].isdigit()]
    assert any(p.name.startswith("flink-") and "taskexecutor" in p.name for p in current)
    leaked = [p.name for p in current if key in p.read_text(errors="replace")]
    assert leaked == []
