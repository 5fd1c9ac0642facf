"""Fault injection: the pipeline survives crashes with no alert lost and none duplicated.

Each case runs the job and the Mongo sink over the same generated input (every fraud
scenario, then a far-future flush) on a private stack, injects a fault mid-stream, and
compares the final `fraud_alerts` (read_committed) and MongoDB `alerts` with an
uninterrupted run: the same set of distinct alert ids, nothing missing, no duplicate document
in MongoDB; and the lake holds every transaction exactly once. With the default at-least-once
sinks a fault may re-send alerts written since the last checkpoint (same alert_id: consumers
de-duplicate by it, MongoDB upserts by it); with exactly-once sinks the topic holds no
duplicate either. The lake's files are committed with the checkpoints: exactly once always.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import threading
import time
import uuid
from collections import Counter

import pytest

from jobs.history import compaction, lake
from jobs.history.backtest import run as backtest
from jobs.rule_admin.versions import current_history
from stack import manager
from tests.e2e.pipeline import Pipeline, card_numbers, dataset, transaction_ids
from tests.isolated_stack import isolated_stack
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 6_000  # two minutes of event time at 50/s, plus the scenarios' tails
RATE = 250.0  # input records per second: about 25 s of production per run


@pytest.fixture(scope="module")
def stack():
    with isolated_stack("faults-", start=True) as (settings, config_file, overrides):
        yield settings, config_file, overrides


@pytest.fixture(scope="module")
def events(stack):
    return dataset(stack[0], EVENTS)


def _pipeline(stack, **job) -> Pipeline:
    settings, config_file, overrides = stack
    return Pipeline.create(settings, config_file, overrides, uuid.uuid4().hex[:8], **job)


@pytest.fixture(scope="module")
def expected(stack, events) -> set[str]:
    """The alert ids of an uninterrupted run; on the way, what its lake holds is checked: every
    transaction once, no card number, and a backtest with no change raising the same ids."""
    p = _pipeline(stack)
    try:
        p.submit()
        p.start_sink()
        p.produce(events, RATE)
        ids = p.wait_for_stable_alerts()
        assert len(ids) == len(set(ids)), "the uninterrupted run duplicated alerts"
        wait_until(lambda: set(p.mongo_ids()) == set(ids), 120, "baseline alerts in MongoDB")
        _assert_lake_holds_each_once(p, events)
        _assert_no_card_number_in_the_lake(p, events)
        _assert_partitioned_by_event_hour(p)
        _assert_a_backtest_raises_what_the_job_raised(p, set(ids))
    finally:
        p.cancel()
        p.stop_sink()
    assert len(ids) >= 20, f"too few alerts for a meaningful comparison: {len(ids)}"
    return set(ids)


def _assert_lake_holds_each_once(p: Pipeline, events) -> None:
    sent = transaction_ids(events)
    rows = p.wait_for_lake(sent)
    dupes = [i for i, n in Counter(rows).items() if n > 1]
    assert dupes == [], f"transactions twice in the lake: {dupes[:5]}"
    assert set(rows) == sent


def _assert_compaction_keeps_each_once(p: Pipeline, events) -> None:
    """`fraudctl lake compact` beside the running job, after its recovery: the complete
    partitions' files become one each, and the lake still holds each transaction once."""
    files_before = len(lake.dataset(p.settings, "transactions").files)
    done = compaction.compact(p.settings, min_age=dt.timedelta(0))
    merged = [c for c in done if c.skipped is None and c.table == "transactions"]
    assert merged, done
    data = lake.dataset(p.settings, "transactions")
    assert len(data.files) == files_before - sum(c.files - 1 for c in merged)
    per_partition = Counter(f.rsplit("/", 1)[0] for f in data.files)
    for c in merged:
        assert [n for d, n in per_partition.items() if d.endswith(c.partition)] == [1]
    _assert_lake_holds_each_once(p, events)


def _assert_no_card_number_in_the_lake(p: Pipeline, events) -> None:
    cards = card_numbers(events)
    for table in lake.TABLES:
        data = lake.dataset(p.settings, table)
        if data is None:
            continue
        assert "card_number" not in data.schema.names
        values = data.to_table()
        for name in values.column_names:
            if values.schema.field(name).type == "string":
                assert not cards & set(values[name].to_pylist()), f"{table}.{name}"


def _assert_partitioned_by_event_hour(p: Pipeline) -> None:
    """transactions/dt=YYYY-MM-DD/hr=HH/<file>, each row in the hour of its event time."""
    data = lake.dataset(p.settings, "transactions")
    root = p.settings.lake_uri().removeprefix("file://") + "/transactions/"
    for path in data.files:
        assert re.fullmatch(r"dt=\d{4}-\d\d-\d\d/hr=\d\d/[^/.][^/]*", path.removeprefix(root))
    rows = data.to_table(columns=["event_time", "dt", "hr"]).to_pylist()
    assert all(r["event_time"].strftime("%Y-%m-%d/%H") == f"{r['dt']}/{r['hr']}" for r in rows)
    assert len({(r["dt"], r["hr"]) for r in rows}) > 1  # the flush record is in an hour of its own


def _assert_a_backtest_raises_what_the_job_raised(p: Pipeline, live: set[str]) -> None:
    """The lake replayed through the job's rule SQL, with no change, gives the live ids."""
    data = lake.summary(p.settings)[0]
    start = dt.datetime.fromisoformat(data.oldest)
    end = dt.datetime.fromisoformat(data.newest) + dt.timedelta(seconds=1)
    table = lake.transactions(p.settings, start, end)
    result = backtest(p.settings, start, end, table, [], current_history(p.settings))
    replayed = {a["alert_id"] for a in result.current}
    assert replayed == live, (
        f"only live: {sorted(live - replayed)[:5]}, only replayed: {sorted(replayed - live)[:5]}"
    )


def _assert_same(p: Pipeline, expected: set[str], events) -> None:
    topic, mongo = p.wait_for(expected)
    if p.settings.job.delivery_guarantee == "exactly-once":
        dupes = [i for i, n in Counter(topic).items() if n > 1]
        assert dupes == [], f"duplicated alerts in fraud_alerts: {dupes[:5]}"
    assert set(topic) == expected, (
        f"missing {sorted(expected - set(topic))[:5]}, extra {sorted(set(topic) - expected)[:5]}"
    )
    assert sorted(mongo) == sorted(expected)  # one document per alert id
    _assert_lake_holds_each_once(p, events)


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_taskmanager_kill_9_recovers_from_checkpoint(stack, events, expected, guarantee):
    settings = stack[0]
    p = _pipeline(stack, delivery_guarantee=guarantee)

    def kill_taskmanager() -> None:
        p.wait_for_new_checkpoint()
        manager.kill_service(settings, "taskmanager", signal.SIGKILL)
        manager.up(settings, install_missing=False)  # a new TaskManager; the job restarts on it

    try:
        p.submit()
        p.start_sink()
        p.produce(events, RATE, faults={0.5: kill_taskmanager})
        _assert_same(p, expected, events)
        assert p.failovers() >= 1, "the job saw no failure: the fault did not hit it"
        _assert_compaction_keeps_each_once(p, events)
    finally:
        p.cancel()
        p.stop_sink()


def test_whole_cluster_kill_9_resumes_from_latest_checkpoint(stack, events, expected):
    settings = stack[0]
    p = _pipeline(stack)
    old_job = []

    def kill_cluster() -> None:
        p.wait_for_new_checkpoint()
        manager.kill_service(settings, "jobmanager", signal.SIGKILL)
        manager.kill_service(settings, "taskmanager", signal.SIGKILL)
        manager.up(settings, install_missing=False)
        old_job.append(p.job_id)
        p.submit(from_savepoint=p.latest_retained_checkpoint())

    try:
        p.submit()
        p.start_sink()
        p.produce(events, RATE, faults={0.5: kill_cluster})
        assert old_job and old_job[0] != p.job_id
        _assert_same(p, expected, events)
    finally:
        p.cancel()
        p.stop_sink()


def test_kafka_broker_restart_mid_stream(stack, events, expected):
    settings = stack[0]
    p = _pipeline(stack)

    def restart_kafka() -> None:
        manager.kill_service(settings, "kafka", signal.SIGTERM)
        wait_until(lambda: not manager.status(settings)[0].pid, 60, "the broker to stop")
        manager.up(settings, install_missing=False)

    try:
        p.submit()
        p.start_sink()
        p.produce(events, RATE, faults={0.5: restart_kafka})
        _assert_same(p, expected, events)
    finally:
        p.cancel()
        p.stop_sink()


def test_sink_killed_and_ferretdb_restarted_while_job_runs(stack, events, expected):
    settings = stack[0]
    p = _pipeline(stack)

    def kill_sink() -> None:
        p.kill_sink(signal.SIGKILL)

    def restart_ferretdb_and_sink() -> None:
        manager.kill_service(settings, "ferretdb", signal.SIGKILL)
        wait_until(lambda: not manager.status(settings)[1].pid, 30, "FerretDB to stop")
        manager.up(settings, install_missing=False)
        p.start_sink()

    try:
        p.submit()
        p.start_sink()
        p.produce(events, RATE, faults={0.3: kill_sink, 0.6: restart_ferretdb_and_sink})
        _assert_same(p, expected, events)
    finally:
        p.cancel()
        p.stop_sink()


def test_the_rules_reader_survives_junk_and_a_broker_kill_9_then_applies_a_change(stack):
    """Junk on fraud_rules is counted and skipped; after the broker is killed -9 and comes back,
    `fraudctl rules set` applies in the same job within 5 s: the first transaction after the
    change's effective time is judged by its version."""
    import json as jsonlib

    from confluent_kafka import Producer

    from tests.jobs.crafted import Crafted
    from tests.jobs.live_job import LiveJob, Record

    settings, _, overrides = stack
    job = LiveJob.create(settings, uuid.uuid4().hex[:10], stack=overrides)
    rules_topic = job.settings.kafka.topics.rules
    crafted = Crafted(t0_ms=int(time.time() * 1000))

    def purchase(amount: str) -> Record:
        value = crafted.txn(crafted.card(), (time.time() * 1000 - crafted.t0_ms) / 1000, amount)
        return Record(value, crafted._ts(value), value["user_id"])

    try:
        first = purchase("900.00")
        job.produce([first])
        job.start()
        job.read(job.settings.kafka.topics.fraud_alerts, lambda m: len(m) >= 1, 180)
        junk = Producer({"bootstrap.servers": job.settings.kafka.bootstrap_servers})
        for value in (
            b"{not json",
            jsonlib.dumps({"rule": "no_such_rule", "version": 1}).encode(),
            jsonlib.dumps(
                {"rule": "high_value", "version": 7, "effective_at_ms": 0,
                 "params": {"amount_over": -1}}
            ).encode(),
        ):  # fmt: skip
            junk.produce(rules_topic, key=b"high_value", value=value)
        assert junk.flush(30) == 0

        manager.kill_service(settings, "kafka", signal.SIGKILL)
        manager.up(settings, install_missing=False)
        back = time.time()
        changed = jsonlib.loads(
            job.fraudctl("rules", "set", "high_value", "amount_over=100", "--json")
        )
        assert changed["version"] == 1  # the junk took no version number

        # a purchase every 0.2 s, so the first alert under the change comes within 0.2 s of the
        # job applying it (a probe per poll of the alerts, 1.5 s apart, added up to 1.5 s)
        stop_probing = threading.Event()

        def probe() -> None:
            while not stop_probing.wait(0.2):
                job.produce([purchase("150.00")])

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()

        def judged_by_the_change() -> dict | None:
            alerts = job.read(job.settings.kafka.topics.fraud_alerts, lambda m: False, 1)
            return next((a["value"] for a in alerts if a["value"]["rule_version"] == 1), None)

        try:
            alert = wait_until(judged_by_the_change, 60, "an alert under the new version", 0.5)
        finally:
            stop_probing.set()
            prober.join(30)
        detected = dt.datetime.fromisoformat(alert["detected_at"].replace("Z", "+00:00"))
        assert alert["rule"] == "HIGH_VALUE" and alert["details"]["amount_over"] == 100.0
        assert job.client.failovers(job.job_id) == 0, "the job restarted: not the same reader"
        applied_after_s = detected.timestamp() - back
        assert applied_after_s <= 5.0, f"applied {applied_after_s:.1f} s after the broker came back"
        skipped = wait_until(
            lambda: job.client.rule_reader_counts(job.job_id).get("rule_records_skipped"),
            60,
            "the job's count of skipped fraud_rules records",
            every_s=2,
        )
        assert skipped >= 3
    finally:
        job.close()
        job.delete_topics()
