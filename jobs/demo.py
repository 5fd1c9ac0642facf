"""`fraudctl demo`: the whole product end to end on the local stack.

Starts the stack, submits the job (or reuses the running one), starts the Mongo sink,
replays six hours of simulated traffic with every fraud scenario, waits for the
pipeline to drain, then prints alerts by rule and severity, windowed analytics,
precision/recall against the producer's ground truth, what the lake holds, the Flink web UI
link and a backtest to try on the traffic just replayed.
The stack stays up; `fraudctl stack down` (or `make stack-down`) stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from config import Settings
from config.kafka import client_config
from fraudctl.cli_common import ConfigOption, console, err_console, fail, settings
from jobs.cluster.input_progress import input_progress, sink_progress

FRAUDCTL = str(Path(sys.executable).with_name("fraudctl"))


def _fraudctl(*args: str, check: bool = True) -> int:
    """Run another verb in a child process (its output goes straight to the terminal)."""
    # tables stay readable when the output is not a terminal (CI logs, pipes)
    env = {**os.environ, "COLUMNS": os.environ.get("COLUMNS", "160")}
    code = subprocess.run(
        [FRAUDCTL, *args], stdin=subprocess.DEVNULL, check=False, env=env
    ).returncode
    if check and code != 0:
        fail(f"`fraudctl {' '.join(args)}` failed with exit status {code}")
    return code


def _running_job(s: Settings) -> str | None:
    from jobs.cluster.flink_client import FlinkClient

    for job in FlinkClient(s.flink.jobmanager).jobs():
        if job.name == s.flink.job_name and job.state in {"RUNNING", "CREATED", "RESTARTING"}:
            return job.job_id
    return None


def _alert_count(s: Settings) -> int:
    import pymongo

    client = pymongo.MongoClient(s.mongo.uri, serverSelectionTimeoutMS=5000)
    try:
        return client[s.mongo.database][s.mongo.alerts_collection].count_documents({})
    finally:
        client.close()


def _last_event_time(s: Settings) -> datetime | None:
    """The latest `event_time` among the last records of the input topic's partitions."""
    from confluent_kafka import Consumer, TopicPartition

    topic = s.kafka.topics.transactions
    c = Consumer(client_config(s.kafka.bootstrap_servers, {"group.id": "fraud-demo-peek"}))
    latest: datetime | None = None
    try:
        for p in c.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, high - 1)])
            msg = c.poll(10)
            try:
                t = datetime.fromisoformat(json.loads(msg.value())["event_time"])
            except (AttributeError, TypeError, ValueError, KeyError):
                continue  # an invalid record last: its partition tells nothing
            latest = t if latest is None or t > latest else latest
    finally:
        c.close()
    return latest


def run_start(
    now: datetime, minutes: float, previous: datetime | None, horizon_ms: int
) -> datetime:
    """Event time of a run's first transaction: `minutes` before `now`, so the run ends about
    now; but after an earlier run's last transaction (`previous`) by more than the job's
    longest horizon. A replay into the past would be late data for a job that already ran,
    and the same seed replays the same cards: a run closer than the horizon would pair one
    run's card with the other's (IMPOSSIBLE_TRAVEL relates purchases up to 24 h apart)."""
    start = now - timedelta(minutes=minutes)
    if previous is None:
        return start
    return max(start, previous + timedelta(milliseconds=horizon_ms, minutes=1))


def _wait_for_drain(s: Settings, quiet_s: float, timeout_s: float) -> int:
    """Wait (bounded) until the job has read the whole input (its offsets are committed at
    each checkpoint), then until the sink has written everything the job wrote and the alert
    count in MongoDB has not changed for `quiet_s` (the last windows close meanwhile). The
    sink's own offsets matter: a job submitted again re-sends its history, and the sink may
    spend minutes on one batch of replacements while the count stands still."""
    deadline = time.monotonic() + timeout_s
    with err_console.status("waiting for the job to read all input ...") as status:
        while time.monotonic() < deadline:
            done, total = input_progress(s)
            if done >= total:
                break
            status.update(f"the job has read {done:,} of {total:,} records ...")
            time.sleep(2.0)
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = _alert_count(s)
            written, total = sink_progress(s)
            if n != last or written < total:
                last, last_change = n, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                return n
            status.update(
                f"waiting for the last alerts to reach MongoDB: {n} so far, the sink has "
                f"written {written:,} of {total:,} output records ..."
            )
            time.sleep(1.0)
    err_console.print("[yellow]the pipeline had not drained in time; results may be partial[/]")
    return last


def demo(
    config: ConfigOption = None,
    minutes: Annotated[
        float,
        typer.Option(
            help="Simulated minutes of traffic to replay (the behavioural fraud, account "
            "takeover and drain, needs hours of each card's history)."
        ),
    ] = 360.0,
    rate: Annotated[float, typer.Option(help="Events per wall-clock second.")] = 1500.0,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 300.0,
    population: Annotated[
        int,
        typer.Option(
            min=1,
            help="Cards. With the rate and speedup it sets how often a card buys (here every "
            "200 s of event time, as in the traffic the default model was trained on).",
        ),
    ] = 1000,
    fraud_rate: Annotated[float, typer.Option(help="Share of events in fraud scenarios.")] = 0.02,
    bad_records: Annotated[
        float, typer.Option(help="Share of invalid records (they go to the DLQ topic).")
    ] = 0.002,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the population and the stream (the default model was trained on 7)."
        ),
    ] = 11,
) -> None:
    """Run the pipeline end to end on the local stack and print what it caught (with learned
    scoring on: RISK_SCORE by the default model over each card's behaviour)."""
    s = settings(config)
    from jobs.cluster.submit import SubmitError, submit
    from stack import manager

    console.rule("1/5 local stack")
    try:
        manager.up(s)
    except Exception as exc:  # StackError, InstallError: already carry their cause
        fail(str(exc))

    console.rule("2/5 Flink SQL job")
    job_id = _running_job(s)
    if job_id:
        console.print(f"reusing the running job {job_id}")
    else:
        try:
            with err_console.status("submitting the job (plans it in a local JVM) ..."):
                # the submission renders the job in a process of its own: the override
                # travels with it
                job_id = submit(s, overrides={"scoring": {"enabled": True}}).job_id
        except SubmitError as exc:
            fail(str(exc))
        console.print(f"submitted job {job_id}")

    console.rule("3/5 Mongo sink")
    started = manager.start_optional(s, "sink")
    console.print("sink started" if started else "sink already running")

    console.rule("4/5 traffic")
    run_dir = s.stack.resolve(s.stack.run_dir).parent / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    truth = run_dir / f"truth-{datetime.now(UTC):%Y%m%dT%H%M%S}.jsonl"
    start = run_start(datetime.now(UTC), minutes, _last_event_time(s), s.job.longest_horizon_ms())
    count = int(minutes * 60 / speedup * rate)
    _fraudctl(
        "produce",
        "--start-time", start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "--speedup", str(speedup),
        "--rate", str(rate),
        "--count", str(count),
        "--fraud-rate", str(fraud_rate),
        "--bad-records", str(bad_records),
        "--seed", str(seed),
        "--population", str(population),
        "--truth", str(truth),
    )  # fmt: skip

    console.rule("5/5 results")
    _wait_for_drain(s, quiet_s=20, timeout_s=900)
    _fraudctl("query", "stats", check=False)
    _fraudctl("query", "windows", "--limit", "12", check=False)
    _fraudctl("evaluate", "--truth", str(truth), check=False)
    if s.lake.enabled:
        _fraudctl("lake", check=False)
    end = start + timedelta(minutes=minutes)
    console.print(
        f"\nFlink web UI: http://{s.flink.jobmanager}/#/job/running/{job_id}/overview\n"
        f"Query more:   fraudctl query alerts --rule VELOCITY | fraudctl query top\n"
        f"Backtest:     fraudctl backtest --from {start:%Y-%m-%dT%H:%M:%S} "
        f"--to {end:%Y-%m-%dT%H:%M:%S} --set velocity.max_count=2 --labels {truth}\n"
        f"Stop it all:  fraudctl stack down   (or: make stack-down)"
    )
    if os.environ.get("CI"):
        console.print("[dim]CI: the stack is left up; the CI session ends its processes[/]")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
