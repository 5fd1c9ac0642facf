"""Benchmark of the Flink SQL job on the local stack: replay throughput and alert latency.

    .venv/bin/python -m benchmarks.job_replay throughput --events 1000000
    .venv/bin/python -m benchmarks.job_replay latency --rate 2000 --seconds 120

Both use fresh topics (unique names) and the producer's generator (producer/generator.py:
normal traffic plus 1 % labelled fraud scenarios), submit the job rendered from the default
config with those topics, and cancel it at the end.

- throughput: pre-loads N events, then starts the job from the earliest offset and follows the
  source's committed offsets (committed at each checkpoint) until both sources (json and raw)
  have consumed everything. Reports events/s over the whole run (from all tasks RUNNING) and
  in steady state (from the first committed offset).
- latency: starts the job, then produces at a steady rate with event_time = wall clock, and
  reads `fraud_alerts` with read_committed. Latency of an alert = the moment it is readable
  minus the moment its latest transaction was produced (so it includes windows closing, the
  5 s watermark delay and the exactly-once commit at the next checkpoint).
Results are printed and written to benchmarks/results/job_replay-<mode>-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer

from benchmarks.common import (
    RESULTS,
    LoadSampler,
    create_topics,
    generator,
    job_overrides,
    population_for,
    producer,
)
from config import load_settings
from jobs.flink_client import FlinkClient
from jobs.input_progress import input_progress
from jobs.submit import submit


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    overrides = job_overrides(
        uid, args.partitions, args.checkpoint, args.state_backend, args.parallelism
    )
    s = load_settings(**overrides)
    create_topics(s, args.partitions)
    start_ms = int(time.time() * 1000) - int(args.events / args.event_rate * 1000) - 3_600_000
    gen = generator(s, start_ms, args.event_rate, population_for(args.event_rate, args.population))
    prod = producer(s)
    t0 = time.monotonic()
    n = 0
    for ev in gen.take(args.events):
        while True:
            try:
                prod.produce(s.kafka.topics.transactions, value=ev.value, key=ev.key)
                break
            except BufferError:
                prod.poll(0.05)
        n += 1
        if n % 100_000 == 0:
            prod.poll(0)
            print(f"  pre-loaded {n:,} events ({n / (time.monotonic() - t0):,.0f}/s)", flush=True)
    prod.flush(120)
    print(f"pre-loaded {n:,} events in {time.monotonic() - t0:.1f} s", flush=True)

    client = FlinkClient(s.flink.jobmanager)
    job = submit(s, overrides=overrides)
    try:
        client.wait_until_running(job.job_id, timeout_s=300)
        t_running = time.monotonic()
        print(f"job {job.job_id} running; following committed offsets ...", flush=True)
        sources = ("json", "raw")  # both read the whole topic: done when the slower one is
        t_first = None
        first_done = 0
        deadline = time.monotonic() + args.timeout
        done = 0
        with LoadSampler(client, job.job_id) as sampler:
            while time.monotonic() < deadline:
                done = min(input_progress(s, source)[0] for source in sources)
                now = time.monotonic()
                if done > 0 and t_first is None:
                    t_first, first_done = now, done
                print(f"  consumed {done:,}/{n:,}", flush=True)
                if done >= n:
                    break
                time.sleep(1.0)
        t_end = time.monotonic()
        if done < n:
            raise SystemExit(f"job consumed only {done:,} of {n:,} within {args.timeout} s")
    finally:
        client.cancel(job.job_id)
    steady = (n - first_done) / (t_end - t_first) if t_first and t_end > t_first else None
    return {
        "mode": "throughput",
        "events": n,
        "partitions": args.partitions,
        "checkpoint_interval": args.checkpoint,
        "state_backend": args.state_backend,
        "population": len(gen.pop.users),
        "seconds_from_running": round(t_end - t_running, 1),
        "events_per_s_overall": round(n / (t_end - t_running)),
        "events_per_s_steady": round(steady) if steady else None,
        "parallelism": args.parallelism,
        "vertex_load": sampler.profile(),
        "job_id": job.job_id,
    }


def latency(args: argparse.Namespace) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    overrides = job_overrides(
        uid, args.partitions, args.checkpoint, args.state_backend, args.parallelism
    )
    s = load_settings(**overrides)
    create_topics(s, args.partitions)
    client = FlinkClient(s.flink.jobmanager)
    job = submit(s, overrides=overrides)
    produced_at: dict[str, float] = {}
    seen: list[tuple[str, float, list[str]]] = []
    stop = threading.Event()

    def read_alerts() -> None:
        c = Consumer(
            {
                "bootstrap.servers": s.kafka.bootstrap_servers,
                "group.id": f"bench-reader-{uid}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        c.subscribe([s.kafka.topics.fraud_alerts])
        while not stop.is_set():
            msg = c.poll(0.2)
            if msg is None or msg.error():
                continue
            a = json.loads(msg.value())
            seen.append((a["rule"], time.time(), a["transaction_ids"]))
        c.close()

    reader = threading.Thread(target=read_alerts, daemon=True)
    try:
        client.wait_until_running(job.job_id, timeout_s=300)
        reader.start()
        print(f"job {job.job_id} running; producing {args.rate}/s for {args.seconds} s", flush=True)
        population = population_for(args.rate, args.population)
        gen = generator(s, int(time.time() * 1000) + 1000, args.rate, population)
        prod = producer(s)
        t_stop = time.time() + args.seconds
        sent = 0
        for ev in gen:
            now = time.time()
            if now >= t_stop:
                break
            wait = ev.event_time_ms / 1000 - now
            if wait > 0:
                time.sleep(wait)
            prod.produce(s.kafka.topics.transactions, value=ev.value, key=ev.key)
            if ev.transaction_id:
                produced_at[ev.transaction_id] = time.time()
            sent += 1
            if sent % 1000 == 0:
                prod.poll(0)
        prod.flush(30)
        print(f"sent {sent:,} events; waiting {args.drain} s for the last alerts", flush=True)
        time.sleep(args.drain)  # let windows, watermark and the last checkpoint pass
    finally:
        stop.set()
        client.cancel(job.job_id)
    by_rule: dict[str, list[float]] = {}
    for rule, at, txns in seen:
        times = [produced_at[t] for t in txns if t in produced_at]
        if times:
            by_rule.setdefault(rule, []).append(at - max(times))
    every = [v for vs in by_rule.values() for v in vs]
    if not every:
        raise SystemExit("no alerts were read")

    def summary(vs: list[float]) -> dict[str, float]:
        return {
            "n": len(vs),
            "p50_s": round(statistics.median(vs), 2),
            "p99_s": round(_percentile(vs, 0.99), 2),
        }

    return {
        "mode": "latency",
        "rate_eps": args.rate,
        "seconds": args.seconds,
        "events_sent": sent,
        "checkpoint_interval": args.checkpoint,
        "state_backend": args.state_backend,
        "all_rules": summary(every),
        "per_rule": {r: summary(v) for r, v in sorted(by_rule.items())},
        "job_id": job.job_id,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.job_replay")
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput", help="replay pre-loaded events")
    t.add_argument("--events", type=int, default=1_000_000)
    t.add_argument("--event-rate", type=float, default=2000.0, help="event-time rate of the data")
    t.add_argument("--timeout", type=float, default=1800)
    lat = sub.add_parser("latency", help="event-to-alert latency at a steady rate")
    lat.add_argument("--rate", type=float, default=2000.0)
    lat.add_argument("--seconds", type=float, default=120)
    lat.add_argument("--drain", type=float, default=90)
    for p in (t, lat):
        p.add_argument("--partitions", type=int, default=4)
        p.add_argument("--checkpoint", default="10 s", help="checkpoint interval (default 10 s)")
        p.add_argument("--state-backend", default="hashmap", choices=["hashmap", "rocksdb"])
        p.add_argument("--parallelism", type=int, default=1, help="job parallelism (default 1)")
        p.add_argument(
            "--population", type=int, default=0, help="cards/users (0: sized for the rate)"
        )
    args = parser.parse_args()
    result = throughput(args) if args.mode == "throughput" else latency(args)
    result["command"] = f"python -m benchmarks.job_replay {args.mode} " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "mode"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"job_replay-{args.mode}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
