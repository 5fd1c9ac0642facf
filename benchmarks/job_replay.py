"""Benchmark of the Flink SQL job on the local stack: replay throughput and alert latency.

    .venv/bin/python -m benchmarks.job_replay throughput --events 1000000
    .venv/bin/python -m benchmarks.job_replay latency --rate 2000 --seconds 120
    .venv/bin/python -m benchmarks.job_replay rule-change --rate 100 --seconds 60

Both use fresh topics (unique names) and the producer's generator (producer/generator.py:
normal traffic plus 1 % labelled fraud scenarios), submit the job rendered from the default
config with those topics, and cancel it at the end.

- throughput: pre-loads N events, then starts the job from the earliest offset and follows the
  source's committed offsets (committed at each checkpoint) until both sources (json and raw)
  have consumed everything. Reports events/s over the whole run (from all tasks RUNNING) and
  in steady state (from the first committed offset).
- latency: starts the job and `fraudctl sink` (into a database of its own), then produces at a
  steady rate with event_time = wall clock (after `--warmup` seconds whose alerts are reported
  apart, as `warmup_to_kafka`; the JSON's `timeline` has every alert's latency over the run).
  Latency of an alert = the moment it is first readable minus the moment its latest
  transaction was produced, twice: in `fraud_alerts` with read_committed, and in MongoDB. It
  includes windows closing, the watermark delay and, with `--delivery exactly-once`, the
  commit at the next checkpoint.
- rule-change: the latency run, and halfway through `fraudctl rules set high_value
  amount_over=...` (publish_change, as the CLI does). Reports the time from the command to the
  first alert fired by the new version (rule_version 1) being readable in `fraud_alerts`; it
  includes the one second by which a change's effective time trails the command.
Every mode also reports what the TaskManagers cost: CPU ms per event
(`taskmanager_cpu_ms_per_event`) and memory (`taskmanager_memory`: heap, resident memory with
the Python worker, collections).
Results are printed and written to benchmarks/results/job_replay-<mode>-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from pymongo.errors import PyMongoError

from benchmarks.common import (
    RESULTS,
    LoadSampler,
    generator,
    job_overrides,
    population_for,
    producer,
    run_topics,
    taskmanager_cpu_s,
)
from config import Settings, load_settings
from config.settings import environment_overrides
from config.stack import PROJECT_ROOT
from fraudctl import mongo
from jobs.cluster.flink_client import FlinkClient
from jobs.cluster.submit import submit
from jobs.rule_admin.versions import publish_change
from jobs.sql.render import JOB_TEMPLATE
from stack.layout import Layout


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class _Replay:
    """One job's pass over the pre-loaded topic, timed by the offsets its sources commit."""

    job_id: str
    seconds_from_running: float
    events_per_s_overall: int
    events_per_s_steady: int | None
    vertex_load: list[dict[str, Any]]
    checkpoint: dict[str, int]
    state_by_vertex: list[dict[str, Any]]
    # CPU of the TaskManagers and their Python workers from RUNNING to the last record read
    taskmanager_cpu_ms_per_event: float
    # their heap, resident memory and garbage collections over the replay (LoadSampler.memory)
    taskmanager_memory: dict[str, Any]


def _replay(
    s: Settings,
    overrides: dict[str, Any],
    n: int,
    sources: tuple[str, ...],
    timeout_s: float,
    template: str = JOB_TEMPLATE,
) -> _Replay:
    """Submit `template` over the topic, follow its sources (the records they have emitted,
    from Flink's metrics) until they have read all `n` records, take one more checkpoint (its
    size is the state the input left) and cancel."""
    client = FlinkClient(s.flink.jobmanager)
    job = submit(s, overrides=overrides, template=template)
    try:
        client.wait_until_running(job.job_id, timeout_s=300)
        t_running = time.monotonic()
        cpu_at_running = taskmanager_cpu_s(s)
        print(f"job {job.job_id} running; following its sources ...", flush=True)
        t_first, first_done, done = None, 0, 0
        deadline = time.monotonic() + timeout_s
        with LoadSampler(s, client, job.job_id) as sampler:
            while time.monotonic() < deadline:
                # every source reads the whole topic: done when the slowest one is
                emitted = client.source_records(job.job_id)
                done = min(emitted.get(source, 0) for source in sources)
                now = time.monotonic()
                if done > 0 and t_first is None:
                    t_first, first_done = now, done
                print(f"  consumed {done:,}/{n:,}", flush=True)
                if done >= n:
                    break
                time.sleep(1.0)
        t_end = time.monotonic()
        cpu_used = taskmanager_cpu_s(s) - cpu_at_running
        if done < n:
            raise SystemExit(f"job consumed only {done:,} of {n:,} within {timeout_s} s")
        before = client.checkpoint_stats(job.job_id)["completed"]
        give_up_at = time.monotonic() + 120
        while client.checkpoint_stats(job.job_id)["completed"] <= before:
            if time.monotonic() > give_up_at:
                raise SystemExit("no checkpoint completed within 120 s after the replay")
            time.sleep(1.0)
        checkpoint = client.checkpoint_stats(job.job_id)
        # the same checkpoint as `checkpoint`: its parts add up to its state_size
        state_by_vertex = client.checkpoint_state_by_vertex(job.job_id, checkpoint["id"])
    finally:
        client.cancel(job.job_id)
    steady = (n - first_done) / (t_end - t_first) if t_first and t_end > t_first else None
    return _Replay(
        job_id=job.job_id,
        seconds_from_running=round(t_end - t_running, 1),
        events_per_s_overall=round(n / (t_end - t_running)),
        events_per_s_steady=round(steady) if steady else None,
        vertex_load=sampler.profile(),
        checkpoint=checkpoint,
        state_by_vertex=state_by_vertex,
        taskmanager_cpu_ms_per_event=round(cpu_used * 1000 / n, 3),
        taskmanager_memory=sampler.memory(),
    )


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    overrides = job_overrides(
        uid, args.partitions, args.checkpoint, args.state_backend, args.parallelism
    )
    s = load_settings(**overrides)
    with run_topics(s, args.partitions, keep=args.keep):
        return _replay_preloaded(args, uid, overrides, s)


def _replay_preloaded(
    args: argparse.Namespace, uid: str, overrides: dict[str, Any], s: Settings
) -> dict[str, Any]:
    """Pre-load the run's input topic, replay it with the job and (`--ceiling`) with the
    read-parse-discard job."""
    start_ms = int(time.time() * 1000) - int(args.events / args.event_rate * 1000) - 3_600_000
    gen = generator(s, start_ms, args.event_rate, population_for(args.event_rate, args.population))
    prod = producer(s)
    t0 = time.monotonic()
    n = 0
    cards: set[str] = set()
    for ev in gen.take(args.events):
        while True:
            try:
                prod.produce(s.kafka.topics.transactions, value=ev.value, key=ev.key)
                break
            except BufferError:
                prod.poll(0.05)
        if ev.kind != "invalid":
            cards.add(json.loads(ev.value)["card_number"])
        n += 1
        if n % 100_000 == 0:
            prod.poll(0)
            print(f"  pre-loaded {n:,} events ({n / (time.monotonic() - t0):,.0f}/s)", flush=True)
    prod.flush(120)
    print(f"pre-loaded {n:,} events ({len(cards):,} cards) in {time.monotonic() - t0:.1f} s")

    run = _replay(s, overrides, n, ("transactions", "transactions_unparsed"), args.timeout)
    result: dict[str, Any] = {
        "mode": "throughput",
        "events": n,
        "cards": len(cards),
        "partitions": args.partitions,
        "checkpoint_interval": args.checkpoint,
        "state_backend": args.state_backend,
        # FRAUD_JOB__PER_TRANSACTION_READ=shared measures the job with one read of the input
        "per_transaction_read": s.job.per_transaction_read,
        "population": len(gen.pop.users),
        "parallelism": args.parallelism,
        **asdict(run),
        "state_bytes_per_card": round(run.checkpoint["state_size"] / max(len(cards), 1)),
    }
    if args.ceiling:
        # the same topic, read and parsed by the job's own source into a blackhole
        ceiling_overrides = {
            **overrides,
            "job": {**overrides["job"], "consumer_group": f"fraud-bench-ceiling-{uid}"},
        }
        ceiling = _replay(
            load_settings(**ceiling_overrides), ceiling_overrides, n, ("transactions",),
            args.timeout,
            template="testing/read_ceiling.sql.j2",
        )  # fmt: skip
        result["ceiling_events_per_s_steady"] = ceiling.events_per_s_steady
        result["ceiling_events_per_s_overall"] = ceiling.events_per_s_overall
        if ceiling.events_per_s_steady and run.events_per_s_steady:
            result["ratio_to_ceiling"] = round(
                run.events_per_s_steady / ceiling.events_per_s_steady, 3
            )
    return result


class _FirstSeen:
    """When each alert became readable: in `fraud_alerts` (read_committed) and in MongoDB,
    first sighting per alert_id (at-least-once may deliver an alert twice)."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.kafka: dict[str, tuple[float, str, list[str]]] = {}
        self.versions: dict[str, int] = {}  # alert_id -> rule_version
        self.mongo: dict[str, float] = {}
        self.stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._read_kafka, daemon=True),
            threading.Thread(target=self._poll_mongo, daemon=True),
        ]

    def __enter__(self) -> _FirstSeen:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _read_kafka(self) -> None:
        c = Consumer(
            {
                "bootstrap.servers": self.s.kafka.bootstrap_servers,
                "group.id": f"bench-reader-{self.s.job.consumer_group}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 10,
            }
        )
        c.subscribe([self.s.kafka.topics.fraud_alerts])
        while not self.stop.is_set():
            msg = c.poll(0.05)
            if msg is None or msg.error():
                continue
            now = time.time()
            a = json.loads(msg.value())
            self.kafka.setdefault(a["alert_id"], (now, a["rule"], a["transaction_ids"]))
            self.versions.setdefault(a["alert_id"], a.get("rule_version", 0))
        c.close()

    def _poll_mongo(self) -> None:
        import pymongo

        client = pymongo.MongoClient(self.s.mongo.uri, serverSelectionTimeoutMS=5000)
        coll = client[self.s.mongo.database][self.s.mongo.alerts_collection]
        while not self.stop.wait(0.1):
            pending = [i for i in list(self.kafka) if i not in self.mongo]
            if not pending:
                continue
            now = time.time()
            for doc in coll.find({"_id": {"$in": pending}}, {"_id": 1}):
                self.mongo.setdefault(doc["_id"], now)
        client.close()


def _start_sink(overrides: dict[str, Any], log: Path) -> subprocess.Popen:
    """`fraudctl sink` for this run's topics and database, as a user runs it."""
    env = {**os.environ, **environment_overrides(overrides)}
    fraudctl = str(Path(sys.executable).with_name("fraudctl"))
    with log.open("w") as fh:
        return subprocess.Popen(
            [fraudctl, "sink"], env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )


def latency(args: argparse.Namespace) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    overrides = job_overrides(
        uid, args.partitions, args.checkpoint, args.state_backend, args.parallelism
    )
    overrides["job"]["delivery_guarantee"] = args.delivery
    if args.slide:
        overrides["job"]["rules"] = {
            rule: {"slide": args.slide} for rule in ("velocity", "device_sharing")
        }
    if args.risk_score_threshold is not None:
        overrides["job"].setdefault("rules", {})["risk_score"] = {
            "threshold": args.risk_score_threshold
        }
    overrides["mongo"] = {"database": f"bench_{uid}", "consumer_group": f"bench-sink-{uid}"}
    s = load_settings(**overrides)
    with run_topics(s, args.partitions, keep=args.keep), _run_database(s, keep=args.keep):
        return _measure_latency(args, uid, overrides, s)


@contextlib.contextmanager
def _run_database(s: Settings, keep: bool) -> Iterator[None]:
    """The latency run's MongoDB database (`fraudctl sink` creates it), dropped after the run
    unless `keep`; a failure to drop it is reported, not raised."""
    try:
        yield
    finally:
        if keep:
            print(f"kept the run's MongoDB database: {s.mongo.database}", flush=True)
        else:
            client = mongo.client_for(s)
            try:
                client.drop_database(s.mongo.database)
            except PyMongoError as exc:
                print(f"note: MongoDB database {s.mongo.database} not dropped ({exc})")
            finally:
                client.close()


def _measure_latency(
    args: argparse.Namespace, uid: str, overrides: dict[str, Any], s: Settings
) -> dict[str, Any]:
    """Run the job and the sink, produce at the rate and time every alert (module docstring)."""
    client = FlinkClient(s.flink.jobmanager)
    population = population_for(args.rate, args.population)
    job = submit(s, overrides=overrides)
    # the sink's own log is a diagnostic of this run, kept beside the stack's logs
    logs = Layout.from_settings(s).logs
    logs.mkdir(parents=True, exist_ok=True)
    sink = _start_sink(overrides, logs / f"bench-sink-{uid}.log")
    produced_at: dict[str, float] = {}
    try:
        client.wait_until_running(job.job_id, timeout_s=300)
        with _FirstSeen(s) as seen, LoadSampler(s, client, job.job_id) as sampler:
            print(
                f"job {job.job_id} running; producing {args.rate}/s for {args.warmup:g} s of "
                f"warm-up and {args.seconds:g} s measured",
                flush=True,
            )
            gen = generator(s, int(time.time() * 1000) + 1000, args.rate, population)
            prod = producer(s, linger_ms=1)
            t_start = time.time()
            t_measured = t_start + args.warmup
            t_stop = t_measured + args.seconds
            t_change = t_measured + args.seconds / 2 if args.change else None
            # traffic goes on through the drain (not measured): event time must pass the end of
            # the windows that hold the measured transactions, or those windows never fire
            t_end = t_stop + args.drain
            sent = 0
            cpu_at_measured: tuple[float, int] | None = None  # (TaskManager CPU s, sent)
            cpu_at_stop: tuple[float, int] | None = None
            for ev in gen:
                now = time.time()
                if now >= t_end:
                    break
                if cpu_at_measured is None and now >= t_measured:
                    cpu_at_measured = (taskmanager_cpu_s(s), sent)
                if cpu_at_stop is None and now >= t_stop:
                    cpu_at_stop = (taskmanager_cpu_s(s), sent)
                    behind = now - t_stop
                    print(
                        f"sent {sent:,} events ({behind:.1f} s behind schedule); producing "
                        f"{args.drain:g} s more (not measured) for the last alerts",
                        flush=True,
                    )
                if t_change is not None and now >= t_change:
                    t_change = None
                    change_at = time.time()
                    _, version = publish_change(s, *args.change)
                    print(f"rules set {args.change}: version {version.version}", flush=True)
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
            if cpu_at_stop is None:  # the generator ran out before the measured period ended
                cpu_at_stop = (taskmanager_cpu_s(s), sent)
                behind = 0.0
            cpu_used = cpu_at_stop[0] - cpu_at_measured[0] if cpu_at_measured else 0.0
            sent_measured = cpu_at_stop[1] - cpu_at_measured[1] if cpu_at_measured else 0
            seen.stop.wait(2)  # the alerts of the drain's last transactions are not measured
            # when each checkpoint ran, on the timeline's clock: stalls line up with them
            checkpoints = [
                {
                    "at_s": round(c["trigger_ms"] / 1000 - t_start, 1),
                    "took_s": round(c["duration_ms"] / 1000, 1),
                    "status": c["status"],
                }
                for c in client.checkpoint_history(job.job_id)
            ]
    finally:
        try:
            client.cancel(job.job_id)
        finally:  # the sink goes even when the job is gone already (a restarted cluster)
            sink.terminate()
            sink.wait(timeout=60)
    to_kafka: dict[str, list[float]] = {}
    to_mongo: dict[str, list[float]] = {}
    warmup_to_kafka: dict[str, list[float]] = {}
    # per alert: seconds into the run when its last transaction was produced, and its latency
    # to Kafka, so a slow stretch (warm-up, a GC or checkpoint pause) shows where it is
    timeline: dict[str, list[tuple[float, float]]] = {}
    for alert_id, (at, rule, txns) in seen.kafka.items():
        times = [produced_at[t] for t in txns if t in produced_at]
        if not times:
            continue
        last = max(times)
        if last >= t_stop:  # evidence completed during the drain: not measured
            continue
        timeline.setdefault(rule, []).append((round(last - t_start, 2), round(at - last, 3)))
        if last < t_measured:  # the job was still warming up (JIT, Python workers, first fires)
            warmup_to_kafka.setdefault(rule, []).append(at - last)
            continue
        to_kafka.setdefault(rule, []).append(at - last)
        if alert_id in seen.mongo:
            to_mongo.setdefault(rule, []).append(seen.mongo[alert_id] - last)
    if not to_kafka:
        raise SystemExit("no alerts were read")
    rule_change = None
    if args.change:
        rule = args.change[0].upper()
        fired = [
            at for i, (at, r, _) in seen.kafka.items() if r == rule and seen.versions.get(i, 0) > 0
        ]
        rule_change = {
            "change": args.change,
            "seconds_to_first_alert_of_new_version": (
                round(min(fired) - change_at, 2) if fired else None
            ),
            "alerts_of_new_version": len(fired),
        }

    def summary(vs: list[float]) -> dict[str, float]:
        return {
            "n": len(vs),
            "p50_s": round(statistics.median(vs), 2),
            "p99_s": round(_percentile(vs, 0.99), 2),
        }

    def by_rule(values: dict[str, list[float]]) -> dict[str, Any]:
        every = [v for vs in values.values() for v in vs]
        return {
            "all_rules": summary(every) if every else None,
            "per_rule": {r: summary(v) for r, v in sorted(values.items())},
        }

    return {
        "mode": "latency",
        "rate_eps": args.rate,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "events_sent": cpu_at_stop[1],
        "seconds_behind_schedule": round(behind, 1),
        "delivery_guarantee": args.delivery,
        "slide": args.slide or s.job.rules.velocity.slide,
        "checkpoint_interval": args.checkpoint,
        "state_backend": args.state_backend,
        "per_transaction_read": s.job.per_transaction_read,
        "risk_score_threshold": s.job.rules.risk_score.threshold,
        # what the job cost while measured: TaskManager JVMs and their Python workers
        "taskmanager_cores": round(cpu_used / args.seconds, 2),
        "taskmanager_cpu_ms_per_event": round(cpu_used * 1000 / max(sent_measured, 1), 3),
        "alerts_in_kafka": len(seen.kafka),
        "alerts_in_mongo": len(seen.mongo),
        "to_kafka": by_rule(to_kafka),
        "to_mongo": by_rule(to_mongo),
        # alerts of the warm-up, left out above; a cold cluster's first minute is slower
        "warmup_to_kafka": by_rule(warmup_to_kafka),
        "rule_change": rule_change,
        "vertex_load": sampler.profile(),
        # the TaskManagers' heap, resident memory and collections from RUNNING to the drain's end
        "taskmanager_memory": sampler.memory(),
        "timeline": {rule: sorted(points) for rule, points in sorted(timeline.items())},
        "checkpoints": checkpoints,
        "job_id": job.job_id,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line of the three modes."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.job_replay",
        description=__doc__.split("\n\n")[0],
        epilog="Run each on a fresh local stack (`fraudctl stack down; fraudctl stack up`) with "
        "nothing else on the machine; figures vary from run to run (see the README).",
    )
    sub = parser.add_subparsers(dest="mode", required=True, help="what to measure")
    t = sub.add_parser("throughput", help="replay pre-loaded events")
    t.add_argument(
        "--events", type=int, default=1_000_000, help="events to pre-load and replay (default 1M)"
    )
    t.add_argument("--event-rate", type=float, default=2000.0, help="event-time rate of the data")
    t.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds the job may take to consume every event before the run fails (default 1800)",
    )
    t.add_argument(
        "--ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also replay the topic with a read-parse-discard job (the ceiling); report the ratio",
    )
    lat = sub.add_parser("latency", help="event-to-alert latency at a steady rate")
    rc = sub.add_parser(
        "rule-change", help="a latency run with `rules set` halfway: time to the first alert"
    )
    for p, rate, seconds, drain in ((lat, 2000.0, 120, 90), (rc, 100.0, 60, 15)):
        p.add_argument(
            "--rate",
            type=float,
            default=rate,
            help=f"events per second produced (default {rate:g})",
        )
        p.add_argument(
            "--seconds",
            type=float,
            default=seconds,
            help=f"seconds measured, after the warm-up (default {seconds})",
        )
        p.add_argument(
            "--warmup",
            type=float,
            default=0.0,
            help="seconds produced at the rate before the measured ones; their alerts are "
            "reported apart (a freshly started TaskManager is slow for its first minute)",
        )
        p.add_argument(
            "--drain",
            type=float,
            default=drain,
            help="seconds of traffic after the measured ones, not measured, so that the windows "
            "holding measured transactions close (at least the slide + 10 s)",
        )
        p.add_argument(
            "--delivery",
            default="at-least-once",
            choices=["at-least-once", "exactly-once"],
            help="the Kafka sinks' guarantee, job.delivery_guarantee (default at-least-once; "
            "exactly-once makes alerts readable only at the next checkpoint)",
        )
        p.add_argument(
            "--slide", default="", help="HOP slide of the window rules (default: config)"
        )
        p.add_argument(
            "--risk-score-threshold",
            type=float,
            default=None,
            help="RISK_SCORE's threshold (default: config, 0.8). With the default model the "
            "generator's behavioural fraud raises RISK_SCORE alerts when the run is long "
            "enough for it (hours of event time); a lower threshold gives the rule's latency a "
            "figure in a short run (the threshold changes which rows alert, not the path they "
            "take)",
        )
    for p in (t, lat, rc):
        p.add_argument(
            "--partitions", type=int, default=4, help="partitions of the fresh topics (default 4)"
        )
        p.add_argument(
            "--checkpoint",
            default=load_settings().flink.checkpoint_interval,
            help="checkpoint interval (default: the config's, flink.checkpoint_interval)",
        )
        p.add_argument(
            "--state-backend",
            default="hashmap",
            choices=["hashmap", "rocksdb"],
            help="rocksdb: start the stack with FRAUD_FLINK__STATE_BACKEND=rocksdb, so that its "
            "TaskManager has managed memory for RocksDB (stack.taskmanager_managed_fraction) "
            "and no idle slot to split it with (stack.taskmanager_slots)",
        )
        p.add_argument("--parallelism", type=int, default=1, help="job parallelism (default 1)")
        p.add_argument(
            "--population", type=int, default=0, help="cards/users (0: sized for the rate)"
        )
        p.add_argument(
            "--keep",
            action="store_true",
            help="keep the run's topics (and a latency run's MongoDB database) to look at "
            "afterwards; by default they are deleted when the run ends",
        )
    return parser


def command_line(args: argparse.Namespace) -> str:
    """The command that runs this benchmark again with every option as it was (a flag only when
    set, nothing for an option left unset), for the result's `command`."""
    words = ["python", "-m", "benchmarks.job_replay", args.mode]
    for key, value in vars(args).items():
        if key in ("mode", "change") or value is None or value == "":
            continue
        option = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value or key == "ceiling":  # --ceiling / --no-ceiling; --keep only when set
                words.append(option if value else "--no-ceiling")
        else:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


def main() -> None:
    args = build_parser().parse_args()
    # rule-change: HIGH_VALUE from 500.00 down to 200.00, so alerts of the new version follow
    args.change = ("high_value", {"amount_over": "200"}) if args.mode == "rule-change" else None
    result = throughput(args) if args.mode == "throughput" else latency(args)
    result["command"] = command_line(args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"job_replay-{args.mode}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    # the per-alert timeline stays in the file: hundreds of points
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
