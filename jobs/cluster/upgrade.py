"""`fraudctl upgrade`: a structural change (a window length, a pattern's span, a rule switched
on or off in the config file) applied to the running job.

Stop the job with a savepoint, render the job from the current config, resubmit it from the
savepoint, and report what kept its state. Flink hands the savepoint's state to the operators
of the new job graph by operator id, which the planner derives from the graph's shape: a job
vertex whose id the old job also had gets its state back; a new id starts from empty state,
and state of an id the new job no longer has is skipped (not an error). Run-time parameters
need no upgrade: `fraudctl rules set`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings
from jobs.cluster.flink_client import FlinkClient, FlinkError
from jobs.cluster.submit import SubmitError, submit


class UpgradeError(RuntimeError):
    """The upgrade stopped; the message says where the previous job's state is."""


@dataclass
class UpgradeReport:
    old_job_id: str
    new_job_id: str
    savepoint: str
    # job vertex names of the new job: state restored / started empty; of the old job: skipped
    restored: list[str] = field(default_factory=list)
    started_empty: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _vertices(client: FlinkClient, job_id: str) -> dict[str, str]:
    return {v["id"]: v.get("name", "") for v in client.job(job_id).get("vertices", [])}


def upgrade(
    settings: Settings,
    client: FlinkClient,
    job_id: str,
    config_path: Path | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
) -> UpgradeReport:
    """Stop `job_id` with a savepoint and resubmit the job of `settings` from it."""
    old = _vertices(client, job_id)
    on_progress(f"stopping {job_id} with a savepoint")
    savepoint = client.stop_with_savepoint(job_id)
    try:
        on_progress(f"submitting the new job from {savepoint}")
        submitted = submit(
            settings,
            from_savepoint=savepoint,
            config_path=config_path,
            allow_non_restored_state=True,
        )
        on_progress(f"waiting for job {submitted.job_id} to run")
        client.wait_until_running(
            submitted.job_id, timeout_s=180, slots_grace_s=settings.flink.slots_grace_s()
        )
    except (SubmitError, FlinkError) as exc:
        raise UpgradeError(
            f"{exc}\nThe previous job stopped with savepoint {savepoint}; with the previous "
            f"config, `fraudctl submit --from-savepoint {savepoint}` resumes it."
        ) from exc
    new = _vertices(client, submitted.job_id)
    return UpgradeReport(
        old_job_id=job_id,
        new_job_id=submitted.job_id,
        savepoint=savepoint,
        restored=[name for vid, name in new.items() if vid in old],
        started_empty=[name for vid, name in new.items() if vid not in old],
        skipped=[name for vid, name in old.items() if vid not in new],
    )
