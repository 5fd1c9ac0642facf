"""The sink against the real Kafka and FerretDB of the local stack."""

from __future__ import annotations

import json

import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from confluent_kafka import Producer
from pymongo import MongoClient

from mongo_sink import store
from mongo_sink.documents import decode
from tests.mongo_sink.conftest import BASE_MS, Env, iso, make_alert, make_stat, sink_thread
from tests.polling import wait_until

pytestmark = pytest.mark.integration


def snapshot(env: Env) -> dict[str, list[bytes]]:
    """Every document of the three collections as raw BSON bytes, in _id order."""
    out = {}
    m = env.settings.mongo
    for name in (m.alerts_collection, m.window_stats_collection, m.dead_letters_collection):
        coll = env.db[name].with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        out[name] = [d.raw for d in coll.find().sort("_id", 1)]
    return out


def test_replaying_both_topics_twice_leaves_byte_identical_collections(sink_env: Env) -> None:
    alerts = [make_alert(i) for i in range(300)]
    stats = [make_stat(i) for i in range(120)]
    sink_env.send_alerts(alerts)
    sink_env.send_stats(stats)
    sink_env.send(sink_env.alerts_topic, b"k", b"{not json")
    sink_env.flush()
    m = sink_env.settings.mongo
    with sink_thread(sink_env.settings) as (_, st):
        wait_until(lambda: st.consumed >= 421, 60, "first pass to consume every record")
    first = snapshot(sink_env)
    assert [len(first[c]) for c in first] == [300, 120, 1]
    stored = sink_env.db[m.alerts_collection].find_one({"_id": alerts[7]["alert_id"]})
    assert {k: stored[k] for k in alerts[7]} == alerts[7]

    # the same records once more on the topics, then two full replays by fresh groups
    sink_env.send_alerts(alerts)
    sink_env.send_stats(stats)
    for n in (1, 2):
        replay = sink_env.settings.model_copy(
            update={"mongo": m.model_copy(update={"consumer_group": f"{m.consumer_group}-r{n}"})}
        )
        with sink_thread(replay) as (_, st):
            wait_until(lambda st=st: st.consumed >= 841, 90, f"replay {n} to consume all")
        assert st.written == 0, "a replay must not rewrite identical documents"
        assert snapshot(sink_env) == first


def test_poison_message_goes_to_dead_letters_and_later_messages_are_written(
    sink_env: Env,
) -> None:
    sink_env.send_alerts([make_alert(1)])
    sink_env.send(sink_env.alerts_topic, b"bad", b"\x00\x01 not json")
    sink_env.send(sink_env.alerts_topic, b"bad", json.dumps({"rule": "VELOCITY"}).encode())
    sink_env.send(sink_env.stats_topic, None, b"[1, 2, 3]")
    sink_env.flush()
    sink_env.send_alerts([make_alert(2), make_alert(3)])
    sink_env.send_stats([make_stat(0)])
    m = sink_env.settings.mongo
    with sink_thread(sink_env.settings) as (_, st):
        wait_until(lambda: st.consumed >= 7, 60, "every record consumed")
    letters = list(sink_env.db[m.dead_letters_collection].find().sort("reason", 1))
    assert [d["reason"] for d in letters] == ["missing_field:alert_id", "not_json", "not_object"]
    by_reason = {d["reason"]: d for d in letters}
    assert by_reason["not_json"]["payload"] == "\x00\x01 not json"
    assert by_reason["not_object"]["payload"] == "[1, 2, 3]"
    for d in letters:
        assert d["_id"] == f"{d['topic']}|{d['partition']}|{d['offset']}"
    ids = sorted(d["_id"] for d in sink_env.db[m.alerts_collection].find())
    assert ids == sorted(make_alert(i)["alert_id"] for i in (1, 2, 3))
    assert sink_env.count(m.window_stats_collection) == 1


def test_only_committed_transactions_are_written(sink_env: Env) -> None:
    """read_committed: records of an aborted Kafka transaction never reach MongoDB."""
    producer = Producer(
        {
            "bootstrap.servers": sink_env.settings.kafka.bootstrap_servers,
            "transactional.id": f"t5-tx-{sink_env.suffix}",
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(10):
        a = make_alert(i)
        producer.produce(sink_env.alerts_topic, key=a["entity_id"], value=json.dumps(a))
    producer.abort_transaction(30)
    producer.begin_transaction()
    for i in range(10, 15):
        a = make_alert(i)
        producer.produce(sink_env.alerts_topic, key=a["entity_id"], value=json.dumps(a))
    producer.commit_transaction(30)
    sink_env.send_alerts([make_alert(99)])  # a plain record after both transactions
    m = sink_env.settings.mongo
    with sink_thread(sink_env.settings):
        wait_until(
            lambda: sink_env.db[m.alerts_collection].find_one({"_id": make_alert(99)["alert_id"]}),
            60,
            "the record after the transactions",
        )
    ids = sorted(d["_id"] for d in sink_env.db[m.alerts_collection].find())
    assert ids == sorted(make_alert(i)["alert_id"] for i in [*range(10, 15), 99])


def test_indexes_for_the_queries_exist_after_start(sink_env: Env) -> None:
    m = sink_env.settings.mongo
    with sink_thread(sink_env.settings):
        wait_until(
            lambda: "rule_1" in sink_env.db[m.alerts_collection].index_information(),
            30,
            "indexes",
        )
    alert_keys = {
        tuple(k for k, _ in v["key"])
        for v in sink_env.db[m.alerts_collection].index_information().values()
    }
    for keys in [("rule",), ("severity",), ("user_id",), ("card_last4",), ("entity_id",)]:
        assert keys in alert_keys
    assert ("event_time_dt",) in alert_keys and ("detected_at_dt",) in alert_keys
    ws_keys = {
        tuple(k for k, _ in v["key"])
        for v in sink_env.db[m.window_stats_collection].index_information().values()
    }
    assert ("granularity", "window_start") in ws_keys


@pytest.mark.parametrize("strategy", ["insert_first", "upsert"])
def test_a_batch_replacing_hundreds_of_documents_completes(sink_env: Env, strategy) -> None:
    """A replayed batch whose documents all changed (an at-least-once job re-sends its alerts
    with a new `detected_at`) is replaced in full; one update command of that size used to
    hang FerretDB's SQLite backend (store.REPLACE_CHUNK)."""
    n = 3 * store.REPLACE_CHUNK + 7
    first = [make_alert(i) for i in range(n)]
    again = [make_alert(i, detected_at=iso(BASE_MS + i * 1000 + 9000)) for i in range(n)]
    client = MongoClient(sink_env.settings.mongo.uri, socketTimeoutMS=60_000)
    try:
        coll = client[sink_env.settings.mongo.database][sink_env.settings.mongo.alerts_collection]
        docs = [decode("alert", json.dumps(a).encode()) for a in first]
        assert store.write(coll, docs, strategy).inserted == n
        result = store.write(
            coll, [decode("alert", json.dumps(a).encode()) for a in again], strategy
        )
        assert result.inserted + result.replaced == n and not result.rejected
        stored = {d["_id"]: d["detected_at"] for d in coll.find({}, {"detected_at": 1})}
        assert stored == {a["alert_id"]: a["detected_at"] for a in again}
    finally:
        client.close()
