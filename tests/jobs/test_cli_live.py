"""The job verbs against the real cluster: submit, jobs, stop with a savepoint, resume from it,
stop by an id prefix, and the rendered script run unchanged by Flink's own `sql-client.sh -f`."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from config import Settings
from jobs.cluster.flink_client import FlinkClient
from jobs.sql.render import render_script
from tests.jobs.crafted import Crafted, build
from tests.jobs.live_job import LiveJob, Record

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(job: LiveJob, *args: str, timeout: float = 400) -> str:
    return job.fraudctl(*args, timeout=timeout)


def _cli(job: LiveJob, *args: str, timeout: float = 400) -> dict[str, Any] | list[Any]:
    return json.loads(job.fraudctl(*args, "--json", timeout=timeout))


def _high_value(c: Crafted, at_s: int) -> list[Record]:
    """A HIGH_VALUE transaction and a filler 60 s later that moves the watermark past it."""
    hv, filler = c.txn(c.card(), at_s, "900.00"), c.txn(c.card(), at_s + 60)
    return [Record(v, c._ts(v), key=v["user_id"]) for v in (hv, filler)]


def test_stop_with_savepoint_and_resume_emits_each_alert_once(live_stack: Settings):
    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10])
    c = build()  # only for its helpers and time base
    alerts_topic = job.settings.kafka.topics.fraud_alerts
    client = FlinkClient(live_stack.flink.jobmanager)
    resumed_id = None
    try:
        job.produce(_high_value(c, 0))
        first = _cli(job, "submit")
        job.job_id = first["job_id"]
        assert first["web_url"].endswith(f"/#/job/running/{first['job_id']}/overview")
        listed = _cli(job, "jobs")
        assert any(j["job_id"] == first["job_id"] and j["state"] == "RUNNING" for j in listed)
        assert first["job_id"] in _run(job, "jobs")  # the table shows whole ids
        job.read(alerts_topic, lambda m: len(m) >= 1, timeout_s=180)

        stopped = _cli(job, "stop", first["job_id"], "--savepoint")
        assert stopped["savepoint"], stopped
        assert client.wait_for_state(first["job_id"], {"FINISHED"}, 60) == "FINISHED"

        job.produce(_high_value(c, 600))
        resumed = _cli(job, "submit", "--from-savepoint", stopped["savepoint"])
        resumed_id = job.job_id = resumed["job_id"]
        alerts = job.read(alerts_topic, lambda m: len(m) >= 2, timeout_s=180, settle_s=6)
        ids = [a["value"]["alert_id"] for a in alerts]
        # one alert per HIGH_VALUE transaction: the first is not re-emitted after the restore
        assert len(ids) == 2 and len(set(ids)) == 2

        # a unique prefix names the job; the answer carries the whole id
        canceled = _cli(job, "stop", resumed_id[:12], "--no-savepoint")
        assert canceled == {"job_id": resumed_id, "state": "CANCELED", "savepoint": None}
    finally:
        job.close()
        if resumed_id:
            job.job_id = resumed_id
            job.close()
        job.delete_topics()


def test_the_rendered_script_runs_unchanged_in_flinks_sql_client(
    live_stack: Settings, tmp_path: Path
):
    import pyflink

    job = LiveJob.create(live_stack, uuid.uuid4().hex[:10])
    c = build()
    script = tmp_path / "job.sql"
    script.write_text(render_script(job.settings, python_files=""))
    flink_home = Path(pyflink.__file__).parent
    conf_dir = live_stack.stack.resolve(live_stack.stack.data_dir) / "flink-conf"
    env = {
        **os.environ,
        "FLINK_CONF_DIR": str(conf_dir),
        "FLINK_LOG_DIR": str(tmp_path),
    }
    try:
        job.produce(_high_value(c, 0))
        proc = subprocess.run(
            [str(flink_home / "bin" / "sql-client.sh"), "-f", str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        job_id = proc.stdout.split("Job ID:", 1)[1].split()[0]
        job.job_id = job_id
        alerts = job.read(job.settings.kafka.topics.fraud_alerts, lambda m: len(m) >= 1, 180)
        assert alerts[0]["value"]["rule"] == "HIGH_VALUE"
    finally:
        job.close()
        job.delete_topics()
