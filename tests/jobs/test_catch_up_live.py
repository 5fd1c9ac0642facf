"""Catch-up without loss: a backlog or a burst is judged as if it had arrived on time.

A record in event-time order within its partition must never become late because of how the
job happens to read its partitions. Each case runs the backlog of tests/jobs/backlog.py (two
days of traffic over 4 partitions, 60 labelled VELOCITY bursts) through a job, then 40 records
late within their own partition and a flush, and asserts that every burst alerts once and
nothing else does, that the late dead letters are exactly the 40 late records, and that
window_stats counts every other transaction once:

- a cold start on a backlog: the job starts after the backlog was written;
- a burst onto a warm job whose partitions had gone quiet: the job read older traffic and its
  source has been idle longer than job.source_idle_timeout when the backlog lands at once;
- a restore from a savepoint after downtime: half the backlog, a stop with a savepoint, the
  other half written while the job is down, then a resume from the savepoint;
- a TaskManager `kill -9` during the backlog, at parallelism 2 over 2 TaskManagers;
- parallelism 2 over 2 TaskManagers (`stack.taskmanagers: 2`).

The first three run at once on the live stack; the last two on a private stack of two
TaskManagers.
"""

from __future__ import annotations

import itertools
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from config import Settings
from config.validators import duration_ms
from jobs.cluster.input_progress import input_progress
from stack import manager
from tests.isolated_stack import isolated_stack
from tests.jobs.backlog import Backlog, Outcome, assert_judged_on_time, build_backlog, collect
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, Record
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
DAYS = 2


def _backlog(cards: int = 1_500) -> Backlog:
    # four days ago: every record's Kafka timestamp is its event time, the flush's included
    return build_backlog(int((time.time() - 4 * 86_400) * 1000), DAYS, cards, PARTITIONS)


def _job(base: Settings, parallelism: int = 1, stack: dict | None = None) -> LiveJob:
    return LiveJob.create(base, uuid.uuid4().hex[:10], parallelism, PARTITIONS, stack=stack)


def _run(job: LiveJob, backlog: Backlog, scenario: Callable[[LiveJob, Backlog], None]) -> Outcome:
    try:
        scenario(job, backlog)
        _finish(job, backlog)
        return collect(job, backlog, job.settings.card_token_secret())
    finally:
        job.close()
        job.delete_topics()


def _read_all(job: LiveJob) -> None:
    wait_until(
        lambda: (progress := input_progress(job.settings))[0] >= progress[1],
        300,
        "the job to read every record of its input",
    )


def _finish(job: LiveJob, backlog: Backlog) -> None:
    """Once the backlog is read: the late records, then the flush."""
    _read_all(job)
    job.produce(backlog.late)
    job.produce(backlog.flush)


def cold_start(job: LiveJob, backlog: Backlog) -> None:
    job.produce(backlog.records)
    job.start()


def burst_on_quiet_partitions(job: LiveJob, backlog: Backlog) -> None:
    # older traffic on every partition, read while it arrives (cards and ids of its own) ...
    crafted = Crafted(
        t0_ms=backlog.records[0].timestamp_ms - 7_200_000,
        _ids=itertools.count(900_000),
        _cards=itertools.count(900_000),
    )
    warm = []
    for i in range(4 * PARTITIONS):
        value = crafted.txn(crafted.card(), i * 60.0)
        warm.append(Record(value, crafted.t0_ms + i * 60_000, value["user_id"], i % PARTITIONS))
    job.start()
    job.produce(warm)
    _read_all(job)
    # ... then quiet, longer than the idle timeout: every partition is idle
    idle_ms = duration_ms(job.settings.job.source_idle_timeout)
    wait_until(
        lambda: (
            job.client.source_metric(job.job_id, "sourceIdleTime", "min").get("transactions", 0)
            > idle_ms + 3_000
        ),
        120,
        "the input to be quiet for longer than the idle timeout",
        every_s=1,
    )
    backlog.counted += len(warm)
    job.produce(backlog.records)


def restore_after_downtime(job: LiveJob, backlog: Backlog) -> None:
    first, second = backlog.split_at(0.5)
    job.produce(first)
    job.start()
    _read_all(job)
    savepoint = job.client.stop_with_savepoint(job.job_id)
    job.produce(second)  # written while the job is down
    job.start(from_savepoint=savepoint)


@pytest.fixture(scope="module")
def on_live_stack(live_stack: Settings) -> dict[str, tuple[Outcome, Backlog, str]]:
    scenarios = {
        "cold start": cold_start,
        "burst on quiet partitions": burst_on_quiet_partitions,
        "restore after downtime": restore_after_downtime,
    }
    backlogs = {name: _backlog() for name in scenarios}
    with ThreadPoolExecutor(len(scenarios)) as pool:
        futures = {
            name: pool.submit(_run, _job(live_stack), backlogs[name], scenario)
            for name, scenario in scenarios.items()
        }
        key = live_stack.card_token_secret()
        return {name: (f.result(), backlogs[name], key) for name, f in futures.items()}


@pytest.mark.parametrize(
    "case", ["cold start", "burst on quiet partitions", "restore after downtime"]
)
def test_a_backlog_is_judged_as_if_it_had_arrived_on_time(on_live_stack, case) -> None:
    outcome, backlog, key = on_live_stack[case]
    assert_judged_on_time(outcome, backlog, key)


@pytest.fixture(scope="module")
def two_taskmanagers() -> Iterator[tuple[Settings, dict]]:
    with isolated_stack("catch-up-", start=True, taskmanagers=2) as (settings, _, overrides):
        yield settings, overrides


def test_parallelism_2_over_2_taskmanagers(two_taskmanagers) -> None:
    settings, stack = two_taskmanagers
    backlog = _backlog()
    spread: set[str] = set()

    def cold_start_on_both(job: LiveJob, backlog: Backlog) -> None:
        cold_start(job, backlog)
        spread.update(job.client.taskmanagers_of(job.job_id))

    outcome = _run(_job(settings, parallelism=2, stack=stack), backlog, cold_start_on_both)
    assert len(spread) == 2, "the job's subtasks ran on one TaskManager"
    assert_judged_on_time(outcome, backlog, settings.card_token_secret())


def test_a_taskmanager_kill_9_during_the_backlog(two_taskmanagers) -> None:
    settings, stack = two_taskmanagers
    backlog = _backlog(cards=5_000)  # long enough to be read across a checkpoint and a kill
    job = _job(settings, parallelism=2, stack=stack)
    try:
        job.produce(backlog.records)
        job.start()

        def read_after_a_checkpoint() -> int:
            read = job.client.source_records(job.job_id).get("transactions", 0)
            checkpointed = job.client.checkpoint_stats(job.job_id)["completed"] >= 1
            return read if checkpointed else 0

        read = wait_until(read_after_a_checkpoint, 300, "a checkpoint while reading", 0.1)
        manager.kill_service(settings, "taskmanager", signal.SIGKILL, only_one=True)
        manager.up(settings, install_missing=False)  # the killed TaskManager comes back
        assert read < len(backlog.records), f"the whole backlog was read ({read:,}) before"
        _finish(job, backlog)
        outcome = collect(job, backlog, settings.card_token_secret())
        assert job.client.failovers(job.job_id) >= 1, "the kill did not hit the job"
    finally:
        job.close()
        job.delete_topics()
    assert_judged_on_time(outcome, backlog, settings.card_token_secret())


def test_fraudctl_jobs_shows_a_backlog_being_worked_off(live_stack: Settings) -> None:
    """While the job catches up, `fraudctl jobs` says how far behind it is and about how long
    it needs (the Kafka source's lag and read rate); once it has caught up, it says so."""
    import json

    backlog = _backlog(cards=15_000)  # 150,000 records: tens of seconds to read here
    job = _job(live_stack)
    try:
        job.produce(backlog.records)
        job.start()

        def listed() -> dict:
            rows = json.loads(job.fraudctl("jobs", "--json"))
            return next(r for r in rows if r["job_id"] == job.job_id)["input"] or {}

        behind = wait_until(
            lambda: (i := listed()) and not i["caught_up"] and i["eta_s"] and i,
            300,
            "`fraudctl jobs` to show the job behind its input",
            every_s=2,
        )
        assert 0 < behind["records_behind"] <= len(backlog.records)
        assert behind["read_per_s"] > 0
        assert f"{behind['records_behind']:,} records behind" in behind["summary"]
        wait_until(lambda: listed().get("caught_up"), 300, "`fraudctl jobs` to say caught up", 5)
    finally:
        job.close()
        job.delete_topics()
