"""Sink throughput into the local FerretDB (or any MongoDB), with raw `insert_many` as the ceiling.

    .venv/bin/python benchmarks/sink_throughput.py [--count 50000] [--mongo-uri URI]

In one run, on fresh databases and topics of its own (removed afterwards):

1. ceiling: the same alert documents written with bare `insert_many` in batches of the
   sink's batch size (no Kafka, no decoding), into a bare collection and into one with the
   sink's query indexes;
2. sink: the alerts are produced to a fresh topic first, then `mongo_sink.consumer.run`
   drains it (read_committed consume, decode, idempotent write, offset commit per batch);
   docs/s = documents / time from the sink's first consume to the last acknowledged batch;
3. optionally (--replay) a fresh consumer group drains the same topic again (every
   document already stored: the idempotency path; slow on FerretDB, which scans for `$in`);
4. optionally (--upsert-count N) the `upsert` write strategy on N documents, for comparison.

Not a test: prints a table and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer

from benchmarks.common import remove_topics
from config import Settings, load_settings
from fraudctl import mongo
from fraudctl.topics import ensure_topics
from mongo_sink import store
from mongo_sink.consumer import SinkStats, run
from mongo_sink.documents import decode


def alert(i: int) -> dict[str, Any]:
    t = f"2026-11-21T22:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z"
    return {
        "alert_id": uuid.uuid5(uuid.NAMESPACE_OID, str(i)).hex,
        "rule": ("VELOCITY", "HIGH_VALUE", "GEO_HOP", "RISK_SCORE")[i % 4],
        "severity": ("HIGH", "MEDIUM", "HIGH", "CRITICAL")[i % 4],
        "entity_type": "card",
        "entity_id": f"{i % 5000:032x}",
        "user_id": f"u_{i % 5000}",
        "card_last4": f"{i % 10000:04d}",
        "card_token": f"{i % 5000:032x}",
        "transaction_ids": [f"{i:08x}-a", f"{i:08x}-b", f"{i:08x}-c", f"{i:08x}-d"],
        "amount": round(10 + i % 900 + 0.25, 2),
        "score": None,
        "window_start": t,
        "window_end": t,
        "event_time": t,
        "detected_at": t,
        "details": {"count": 4, "threshold": 3},
    }


def with_overrides(base: Settings, topic: str, db: str, group: str, **mongo: Any) -> Settings:
    topics = {
        **base.kafka.topics.model_dump(),
        "fraud_alerts": topic,
        "window_stats": topic + "_ws",
    }
    return load_settings(
        kafka={"topics": topics},
        mongo={"database": db, "consumer_group": group, "uri": base.mongo.uri, **mongo},
    )


def produce(settings: Settings, topic: str, values: list[bytes], keys: list[bytes]) -> None:
    ensure_topics(settings.kafka.bootstrap_servers, {topic: 2, topic + "_ws": 1})
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
        }
    )
    for k, v in zip(keys, values, strict=True):
        while True:
            try:
                producer.produce(topic, key=k, value=v)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise SystemExit("producer could not deliver every record")


def drain(settings: Settings, n: int, timeout_s: float = 600) -> tuple[float, SinkStats]:
    """Run the sink until it consumed `n` records; seconds from first to last batch."""
    stop = threading.Event()
    marks: dict[str, float] = {}
    latest = SinkStats()

    def on_batch(s: SinkStats) -> None:
        now = time.perf_counter()
        marks.setdefault("first_done", now)
        marks["last"] = now
        latest.__dict__.update(s.__dict__)
        if s.consumed >= n:
            stop.set()

    started = time.perf_counter()
    thread = threading.Thread(target=lambda: run(settings, stop, on_batch=on_batch), daemon=True)
    thread.start()
    thread.join(timeout_s)
    stop.set()
    thread.join(60)
    if latest.consumed < n:
        raise SystemExit(f"sink consumed only {latest.consumed} of {n} within {timeout_s} s")
    # the first batch's consume started at most batch_timeout after the thread: count from start
    return marks["last"] - started, latest


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.sink_throughput",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    ap.add_argument(
        "--count", type=int, default=50_000, help="documents per measurement (default 50,000)"
    )
    ap.add_argument(
        "--mongo-uri", default=None, help="MongoDB to write to (default: the config's mongo.uri)"
    )
    ap.add_argument("--replay", action="store_true", help="also time a full replay")
    ap.add_argument(
        "--upsert-count",
        type=int,
        default=0,
        help="also time the upsert strategy on this many documents (default 0: not)",
    )
    return ap


def main() -> None:
    args = build_parser().parse_args()
    base = load_settings(**({"mongo": {"uri": args.mongo_uri}} if args.mongo_uri else {}))
    tag = uuid.uuid4().hex[:8]
    n = args.count
    raw = [alert(i) for i in range(n)]
    values = [json.dumps(a).encode() for a in raw]
    keys = [a["entity_id"].encode() for a in raw]
    client = mongo.client_for(base)
    results: list[tuple[str, int, float]] = []
    dbs: list[str] = []
    topic = f"bench_alerts_{tag}"
    try:
        # 1. ceiling: bare insert_many of the decoded documents
        docs = [decode("alert", v) for v in values]
        db_name = f"bench_raw_{tag}"
        dbs.append(db_name)
        coll = client[db_name]["alerts"]
        batch = base.mongo.batch_size
        t0 = time.perf_counter()
        for k in range(0, n, batch):
            coll.insert_many(docs[k : k + batch], ordered=False)
        results.append(("raw insert_many (ceiling)", n, time.perf_counter() - t0))

        # 1b. the same into a collection with the sink's query indexes
        db_name = f"bench_rawidx_{tag}"
        dbs.append(db_name)
        store.ensure_indexes(client[db_name], base)
        coll = client[db_name][base.mongo.alerts_collection]
        t0 = time.perf_counter()
        for k in range(0, n, batch):
            coll.insert_many(docs[k : k + batch], ordered=False)
        results.append(("raw insert_many, with the sink's indexes", n, time.perf_counter() - t0))

        # 2. the sink, from Kafka, on an empty database
        print(f"producing {n} alerts to {topic} ...", file=sys.stderr)
        produce(base, topic, values, keys)
        db_name = f"bench_sink_{tag}"
        dbs.append(db_name)
        s = with_overrides(base, topic, db_name, f"bench_{tag}_1")
        secs, st = drain(s, n)
        stored = client[db_name]["alerts"].count_documents({})
        assert stored == n, f"sink stored {stored} of {n}"
        results.append(("sink (Kafka -> FerretDB, insert_first)", n, secs))

        # 3. optional: replay by a fresh group, every document already stored
        if args.replay:
            s = with_overrides(base, topic, db_name, f"bench_{tag}_2")
            secs, st = drain(s, n, timeout_s=1800)
            assert st.written == 0 and st.unchanged == n, st
            results.append(("sink replay (all already stored)", n, secs))

        # 4. optional: the upsert strategy (slow on FerretDB: updates scan the collection)
        if args.upsert_count:
            m = args.upsert_count
            db_name = f"bench_upsert_{tag}"
            dbs.append(db_name)
            up = client[db_name]["alerts"]
            t0 = time.perf_counter()
            for k in range(0, m, batch):
                store.write(up, docs[k : min(k + batch, m)], "upsert")
            results.append(
                ("bare upsert strategy (ReplaceOne upsert)", m, time.perf_counter() - t0)
            )
    finally:
        for name in dbs:
            client.drop_database(name)
        client.close()
        remove_topics(base.kafka.bootstrap_servers, [topic, topic + "_ws"])

    print(f"\n{'measurement':44} {'docs':>8} {'seconds':>8} {'docs/s':>9}")
    for name, count, secs in results:
        print(f"{name:44} {count:8d} {secs:8.2f} {count / secs:9.0f}")
    ceiling = results[0][1] / results[0][2]
    sink_rate = results[2][1] / results[2][2]
    print(
        f"\nsink / ceiling = {sink_rate / ceiling:.0%}; target >= 20,000 docs/s: "
        f"{'met' if sink_rate >= 20_000 else 'NOT met'}"
    )
    # one JSON line for the harness (benchmarks/run.py): the ceiling and the sink
    summary = {
        "insert_many_ceiling_docs_per_s": round(ceiling),
        "sink_docs_per_s": round(sink_rate),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
