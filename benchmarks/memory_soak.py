"""Memory of the JobManager and TaskManager over a steady run: does state stay bounded?

    .venv/bin/python -m benchmarks.memory_soak --rate 2000 --minutes 10

Submits the job on fresh topics, produces at a steady rate with event time = wall clock, and
every `--sample-s` seconds records each process's RSS (/proc) and the JVM heap used after the
most recent GC as Flink reports it (Status.JVM.Memory.Heap.Used), plus the job's checkpointed
state size. A flat series means non-windowed state expires (state TTL) instead of growing with
history. Results are printed and written to benchmarks/results/memory_soak-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

from benchmarks.common import RESULTS, generator, job_overrides, producer, run_topics
from config import Settings, load_settings
from jobs.cluster.flink_client import FlinkClient, FlinkError
from jobs.cluster.submit import submit
from stack.layout import Layout
from stack.process import resident_bytes
from stack.services import JobManager, TaskManager


def _rss_mb(pid: int) -> float:
    return resident_bytes([pid]) / 2**20


def _heap_mb(client: FlinkClient) -> tuple[float, float]:
    """(the JobManager's heap in use, the TaskManagers'), MB; NaN for one Flink did not give."""
    try:
        jm = client.jobmanager_heap_used() / 2**20
    except FlinkError:
        jm = float("nan")
    try:
        tm = sum(t["heap_used"] for t in client.taskmanager_jvm().values()) / 2**20
    except FlinkError:
        tm = float("nan")
    return jm, tm


def _state_mb(client: FlinkClient, job_id: str, dedup: set[str]) -> tuple[float, float]:
    """The newest checkpoint's state, all of it and the transaction-id de-duplication's."""
    try:
        stats = client.checkpoint_stats(job_id)
        if not stats["id"]:
            return float("nan"), float("nan")
        parts = client.checkpoint_state_by_vertex(job_id, stats["id"])
    except FlinkError:
        return float("nan"), float("nan")
    ids_seen = sum(p["state_size"] for p in parts if p["vertex_id"] in dedup)
    return stats["state_size"] / 2**20, ids_seen / 2**20


def soak(args: argparse.Namespace) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    overrides = job_overrides(uid, args.partitions, "10 s")
    overrides["job"]["state_ttl"] = args.state_ttl
    overrides["job"]["dedup_horizon"] = args.dedup_horizon
    s = load_settings(**overrides)
    with run_topics(s, args.partitions, keep=args.keep):
        return _sample_run(args, overrides, s)


def _sample_run(args: argparse.Namespace, overrides: dict[str, Any], s: Settings) -> dict[str, Any]:
    """Run the job at the rate and sample its memory and state every `--sample-s` seconds."""
    layout = Layout.from_settings(s)
    jm, tm = JobManager(s, layout), TaskManager(s, layout)
    client = FlinkClient(s.flink.jobmanager)
    job = submit(s, overrides=overrides)
    client.wait_until_running(job.job_id, timeout_s=300)
    dedup = client.vertex_ids(job.job_id, "key=[transaction_id]")
    stop = threading.Event()
    sent = [0]

    def produce() -> None:
        gen = generator(s, int(time.time() * 1000), args.rate)
        prod = producer(s)
        for ev in gen:
            if stop.is_set():
                break
            wait = ev.event_time_ms / 1000 - time.time()
            if wait > 0:
                time.sleep(wait)
            prod.produce(s.kafka.topics.transactions, value=ev.value, key=ev.key)
            sent[0] += 1
            if sent[0] % 1000 == 0:
                prod.poll(0)
        prod.flush(30)

    feeder = threading.Thread(target=produce, daemon=True)
    samples: list[dict[str, float]] = []
    start = time.time()
    feeder.start()
    try:
        while time.time() - start < args.minutes * 60:
            state_mb, dedup_mb = _state_mb(client, job.job_id, dedup)
            jm_heap_mb, tm_heap_mb = _heap_mb(client)
            samples.append(
                {
                    "t_s": round(time.time() - start, 1),
                    "events_sent": sent[0],
                    "jm_rss_mb": round(_rss_mb(jm.pids()[0]), 1),
                    "tm_rss_mb": round(_rss_mb(tm.pids()[0]), 1),
                    "jm_heap_mb": round(jm_heap_mb, 1),
                    "tm_heap_mb": round(tm_heap_mb, 1),
                    "state_mb": round(state_mb, 2),
                    "dedup_state_mb": round(dedup_mb, 2),
                }
            )
            print(json.dumps(samples[-1]), flush=True)
            time.sleep(args.sample_s)
    finally:
        stop.set()
        feeder.join(60)
        client.cancel(job.job_id)

    def drift(key: str) -> dict[str, float]:
        # compare the second half's mean with the first half's after warm-up (first 20 %)
        vals = [x[key] for x in samples[len(samples) // 5 :]]
        half = len(vals) // 2 or 1
        a, b = sum(vals[:half]) / half, sum(vals[half:]) / max(len(vals) - half, 1)
        return {"first_half_mb": round(a, 1), "second_half_mb": round(b, 1),
                "max_mb": round(max(vals), 1)}  # fmt: skip

    return {
        "mode": "memory_soak",
        "rate_eps": args.rate,
        "minutes": args.minutes,
        "state_ttl": args.state_ttl,
        "dedup_horizon": args.dedup_horizon,
        "events_sent": sent[0],
        "tm_rss": drift("tm_rss_mb"),
        "jm_rss": drift("jm_rss_mb"),
        "tm_heap": drift("tm_heap_mb"),
        "state": drift("state_mb"),
        "dedup_state": drift("dedup_state_mb"),
        "samples": samples,
    }


def build_parser() -> argparse.ArgumentParser:
    """The soak's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory_soak",
        description="Run the job on the local stack at a steady rate and sample the memory of "
        "its JobManager and TaskManager and its checkpointed state (module docstring).",
    )
    parser.add_argument(
        "--rate", type=float, default=2000.0, help="events per second (default: 2000)"
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="length of the run (default: 10)"
    )
    parser.add_argument(
        "--sample-s", type=float, default=30.0, help="seconds between samples (default: 30)"
    )
    parser.add_argument(
        "--partitions", type=int, default=1, help="partitions of the run's input topic (default: 1)"
    )
    parser.add_argument(
        "--state-ttl",
        default=load_settings().job.state_ttl,
        help="job.state_ttl for the run (default: the config's); shorter than the run shows "
        "expiry keeping non-windowed state flat",
    )
    parser.add_argument(
        "--dedup-horizon",
        default=load_settings().job.dedup_horizon,
        help="job.dedup_horizon for the run (default: the config's); shorter than the run "
        "shows the transaction ids seen (dedup_state_mb) levelling off",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the run's topics to look at afterwards; by default they are deleted when "
        "the run ends",
    )
    return parser


def main() -> None:
    args = build_parser().parse_args()
    result = soak(args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"memory_soak-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
