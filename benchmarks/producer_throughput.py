"""Producer throughput: 1,000,000 pre-generated transactions to the local broker with
confluent-kafka and kafka-python in the same run, through the same sinks `fraudctl produce` uses.

    .venv/bin/python -m benchmarks.producer_throughput [--events N] [--clients a,b]

Prints generation speed, then per client: events/s from first send to the end of the final
flush (every event acknowledged with acks=all), delivered and failed counts. Each client writes to
a fresh topic (same partition count as `transactions`) that is deleted afterwards.
This is a script, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

from benchmarks.common import remove_topics
from config import load_settings
from producer.generator import GeneratorOptions, TransactionGenerator
from producer.population import build_population
from producer.sinks import CLIENTS, open_kafka_sink

START_MS = 1_795_000_000_000


def _generator(seed: int) -> TransactionGenerator:
    return TransactionGenerator(
        build_population(seed, 10_000),
        GeneratorOptions(seed=seed, start_ms=START_MS, events_per_second=50.0, fraud_rate=0.01),
        "benchmark-key",
    )


def pregenerate(n: int, seed: int) -> tuple[list[tuple[bytes | None, bytes]], float, float]:
    """`n` events as (key, value) pairs; generation events/s in wall time and per CPU second."""
    t0, c0 = time.perf_counter(), time.process_time()
    gen = _generator(seed)
    events: list[tuple[bytes | None, bytes]] = []
    append = events.append
    for _ in range(n):
        ev = gen.next_event()
        append((ev.key, ev.value))
    return events, n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def generate_and_send(client: str, bootstrap: str, topic: str, partitions: int, n: int, seed: int):
    """What `fraudctl produce --no-throttle` does: generate and send in one loop."""
    sink = open_kafka_sink(
        client, bootstrap, topic, partitions={topic: partitions}, connect_timeout_s=10.0
    )
    t0 = time.perf_counter()
    gen = _generator(seed)
    for i in range(n):
        ev = gen.next_event()
        sink.send(ev.key, ev.value)
        if i & 1023 == 0:
            sink.poll()
    undelivered = sink.flush(120.0)
    elapsed = time.perf_counter() - t0
    sink.close()
    return {
        "client": client,
        "mode": "generate+send",
        "events": n,
        "delivered": sink.delivered,
        "failed": sink.failed + undelivered,
        "seconds": round(elapsed, 2),
        "events_per_s": round(n / elapsed),
    }


def send_all(client: str, bootstrap: str, topic: str, partitions: int, events) -> dict:
    """Send every event through the named client's sink; time until all are acknowledged."""
    sink = open_kafka_sink(
        client, bootstrap, topic, partitions={topic: partitions}, connect_timeout_s=10.0
    )
    send, poll = sink.send, sink.poll
    t0 = time.perf_counter()
    for i, (key, value) in enumerate(events):
        send(key, value)
        if i & 1023 == 0:
            poll()
    send_done = time.perf_counter()
    undelivered = sink.flush(120.0)
    elapsed = time.perf_counter() - t0
    sink.close()
    return {
        "client": client,
        "events": len(events),
        "delivered": sink.delivered,
        "failed": sink.failed + undelivered,
        "seconds": round(elapsed, 2),
        "events_per_s": round(len(events) / elapsed),
        "enqueue_events_per_s": round(len(events) / (send_done - t0)),
    }


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.producer_throughput",
        description=__doc__.split("\n\n")[0].replace("1,000,000", "N"),
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events per measurement (default 1M)"
    )
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help=f"comma-separated Kafka clients to time (default {','.join(CLIENTS)})",
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="the generator's random seed (default 42)"
    )
    parser.add_argument(
        "--no-end-to-end",
        action="store_true",
        help="skip the generate-and-send run (what `fraudctl produce --no-throttle` does)",
    )
    return parser


def main() -> None:
    args = build_parser().parse_args()
    settings = load_settings()
    bootstrap = settings.kafka.bootstrap_servers
    partitions = settings.kafka.partitions.get("transactions", 4)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"pre-generating {args.events:,} events ...", flush=True)
    events, gen_rate, gen_cpu_rate = pregenerate(args.events, args.seed)
    size = sum(len(v) for _, v in events) / len(events)
    print(
        f"generation: {gen_rate:,.0f} events/s wall, {gen_cpu_rate:,.0f} per CPU second "
        f"(average value {size:.0f} bytes)"
    )
    results = []
    topics = []
    try:
        for client in args.clients.split(","):
            topic = f"bench_producer_{client.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            topics.append(topic)
            print(f"{client}: sending to {topic} ...", flush=True)
            res = send_all(client, bootstrap, topic, partitions, events)
            res["mode"] = "pre-generated"
            results.append(res)
            print(
                f"{client}: {res['events_per_s']:,} events/s acknowledged "
                f"({res['seconds']} s; delivered {res['delivered']:,}, failed {res['failed']})",
                flush=True,
            )
        sends = [r for r in results if r.get("mode") != "generate+send"]
        best = max(sends, key=lambda r: r["events_per_s"])
        print(f"fastest client: {best['client']} ({best['events_per_s']:,} events/s)")
        if not args.no_end_to_end:
            topic = f"bench_producer_e2e_{uuid.uuid4().hex[:8]}"
            topics.append(topic)
            del events
            res = generate_and_send(
                best["client"], bootstrap, topic, partitions, args.events, args.seed
            )
            results.append(res)
            print(
                f"{best['client']} generate+send: {res['events_per_s']:,} events/s "
                f"({res['seconds']} s; delivered {res['delivered']:,}, failed {res['failed']})",
                flush=True,
            )
    finally:
        if topics:
            remove_topics(bootstrap, topics)
    print(
        json.dumps(
            {
                "load_average": round(os.getloadavg()[0], 1),
                "generation_events_per_s": round(gen_rate),
                "generation_events_per_cpu_s": round(gen_cpu_rate),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
