"""A small client for the Flink JobManager REST API (overview, jobs, savepoints, cancel)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests


class FlinkError(RuntimeError):
    """The JobManager is unreachable or answered with an error."""


@dataclass
class JobInfo:
    job_id: str
    name: str
    state: str
    start_time_ms: int
    duration_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "name": self.name,
            "state": self.state,
            "start_time": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.start_time_ms / 1000)
            )
            if self.start_time_ms > 0
            else None,
            "duration_s": round(self.duration_ms / 1000, 1),
        }


class FlinkClient:
    """REST client for one JobManager, e.g. `FlinkClient("127.0.0.1:8081")`."""

    def __init__(self, jobmanager: str, timeout_s: float = 10.0) -> None:
        self.base = jobmanager if "://" in jobmanager else f"http://{jobmanager}"
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base}{path}"
        try:
            resp = requests.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise FlinkError(f"Flink JobManager at {self.base} is unreachable: {exc}") from exc
        if not resp.ok:
            try:
                errors = resp.json().get("errors", [])
            except ValueError:
                errors = [resp.text]
            first = str(errors[0]).strip().splitlines()[0] if errors else resp.reason
            raise FlinkError(f"{method} {path} -> HTTP {resp.status_code}: {first}")
        return resp.json() if resp.content else {}

    def web_url(self, job_id: str) -> str:
        return f"{self.base}/#/job/running/{job_id}/overview"

    def overview(self) -> dict[str, Any]:
        """Cluster overview: version, task managers, slots, jobs by state."""
        return self._request("GET", "/overview")

    def jobs(self) -> list[JobInfo]:
        """Every job the JobManager knows, newest first."""
        data = self._request("GET", "/jobs/overview")
        jobs = [
            JobInfo(
                job_id=j["jid"],
                name=j.get("name", ""),
                state=j.get("state", ""),
                start_time_ms=int(j.get("start-time", 0)),
                duration_ms=int(j.get("duration", 0)),
            )
            for j in data.get("jobs", [])
        ]
        return sorted(jobs, key=lambda j: j.start_time_ms, reverse=True)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/jobs/{job_id}")

    def job_state(self, job_id: str) -> str:
        return str(self.job(job_id).get("state", "UNKNOWN"))

    def exceptions(self, job_id: str) -> str | None:
        """The job's root exception text, if any."""
        data = self._request("GET", f"/jobs/{job_id}/exceptions")
        return data.get("root-exception") or None

    def root_cause(self, job_id: str) -> str | None:
        """The first lines of the newest failure's most specific cause, if any."""
        data = self._request("GET", f"/jobs/{job_id}/exceptions")
        entries = data.get("exceptionHistory", {}).get("entries", [])
        text = entries[0].get("stacktrace", "") if entries else data.get("root-exception", "")
        if not text:
            return None
        causes = [ln for ln in text.splitlines() if ln.startswith("Caused by:")]
        return (causes[-1] if causes else text.splitlines()[0]).strip()[:1000]

    def vertex_load(self, job_id: str) -> list[dict[str, Any]]:
        """Per job vertex: its name, records in/out so far, and the share of time (0..1) it
        was busy and back-pressured over the last seconds (the web UI's colours, as numbers;
        max over subtasks). Where a slow job spends its time."""
        rows = []
        for v in self.job(job_id).get("vertices", []):
            data = self._request(
                "GET",
                f"/jobs/{job_id}/vertices/{v['id']}/subtasks/metrics",
                params={"get": "busyTimeMsPerSecond,backPressuredTimeMsPerSecond"},
            )
            load = {m["id"]: float(m.get("max", 0.0) or 0.0) / 1000 for m in data}
            metrics = v.get("metrics", {})
            rows.append(
                {
                    "name": v.get("name", ""),
                    "records_in": int(metrics.get("read-records", 0)),
                    "records_out": int(metrics.get("write-records", 0)),
                    "busy": round(load.get("busyTimeMsPerSecond", 0.0), 3),
                    "backpressured": round(load.get("backPressuredTimeMsPerSecond", 0.0), 3),
                }
            )
        return rows

    def source_records(self, job_id: str) -> dict[str, int]:
        """Records each source of the job has emitted so far (summed over its subtasks), by
        source name (`transactions`, ...): how far a job has read, between checkpoints too."""
        out: dict[str, int] = {}
        for v in self.job(job_id).get("vertices", []):
            if not v.get("name", "").startswith("Source: "):
                continue
            path = f"/jobs/{job_id}/vertices/{v['id']}/subtasks/metrics"
            names = [
                m["id"]
                for m in self._request("GET", path)
                if m["id"].startswith("Source__") and m["id"].endswith(".numRecordsOut")
            ]
            if not names:
                continue
            for m in self._request("GET", path, params={"get": ",".join(names)}):
                source = m["id"].removeprefix("Source__").split("[", 1)[0]
                out[source] = out.get(source, 0) + int(float(m.get("sum", 0) or 0))
        return out

    def checkpoint_stats(self, job_id: str) -> dict[str, int]:
        """The job's completed checkpoints so far and the newest one's id, full state size
        (`state_size`) and bytes written for it (`checkpointed_size`, smaller when
        incremental); id and sizes are 0 before the first checkpoint."""
        body = self._request("GET", f"/jobs/{job_id}/checkpoints")
        latest = (body.get("latest") or {}).get("completed") or {}
        return {
            "completed": int(body.get("counts", {}).get("completed", 0)),
            "id": int(latest.get("id") or 0),
            "state_size": int(latest.get("state_size") or 0),
            "checkpointed_size": int(latest.get("checkpointed_size") or 0),
        }

    def vertex_ids(self, job_id: str, described: str) -> set[str]:
        """Ids of the job's vertices whose operators' description (the plan's, fuller than a
        vertex name) contains `described`, e.g. "key=[transaction_id]"."""
        nodes = self.job(job_id).get("plan", {}).get("nodes", [])
        return {n["id"] for n in nodes if described in n.get("description", "")}

    def checkpoint_state_by_vertex(self, job_id: str, checkpoint_id: int) -> list[dict[str, Any]]:
        """Checkpoint `checkpoint_id`'s state size per job vertex (bytes, summed over
        subtasks), largest first: which operators hold the state."""
        details = self._request("GET", f"/jobs/{job_id}/checkpoints/details/{checkpoint_id}")
        names = {v["id"]: v.get("name", "") for v in self.job(job_id).get("vertices", [])}
        rows = [
            {
                "vertex": names.get(vid, vid),
                "vertex_id": vid,
                "state_size": int(task.get("state_size") or 0),
            }
            for vid, task in (details.get("tasks") or {}).items()
        ]
        return sorted(rows, key=lambda r: -r["state_size"])

    def state_backend(self, job_id: str) -> str:
        """The state backend the job runs on, as Flink names it (e.g. `HashMapStateBackend`,
        `EmbeddedRocksDBStateBackend`)."""
        return str(self._request("GET", f"/jobs/{job_id}/checkpoints/config")["state_backend"])

    def checkpoint_history(self, job_id: str) -> list[dict[str, Any]]:
        """The job's recent checkpoints, oldest first: id, status, `trigger_ms` (epoch ms),
        `duration_ms` (trigger to the last acknowledgement) and `state_size`."""
        body = self._request("GET", f"/jobs/{job_id}/checkpoints")
        return [
            {
                "id": c["id"],
                "status": c["status"],
                "trigger_ms": c["trigger_timestamp"],
                "duration_ms": c["latest_ack_timestamp"] - c["trigger_timestamp"],
                "state_size": c.get("state_size") or 0,
            }
            for c in sorted(body.get("history") or [], key=lambda c: c["id"])
        ]

    def cancel(self, job_id: str) -> None:
        self._request("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})

    def stop_with_savepoint(
        self,
        job_id: str,
        target_dir: str | None = None,
        drain: bool = False,
        timeout_s: float = 300,
        on_progress: Callable[[str], None] | None = None,
    ) -> str:
        """Stop the job with a savepoint; poll the trigger until done; return its path."""
        body: dict[str, Any] = {"drain": drain, "formatType": "CANONICAL"}
        if target_dir:
            body["targetDirectory"] = target_dir
        trigger = self._request("POST", f"/jobs/{job_id}/stop", json=body)["request-id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self._request("GET", f"/jobs/{job_id}/savepoints/{trigger}")
            state = status.get("status", {}).get("id")
            if on_progress:
                on_progress(str(state))
            if state == "COMPLETED":
                op = status.get("operation", {})
                if "failure-cause" in op:
                    cause = op["failure-cause"].get("stack-trace", "").strip().splitlines()
                    raise FlinkError(f"savepoint failed: {cause[0] if cause else op}")
                return str(op["location"])
            time.sleep(0.5)
        raise FlinkError(f"savepoint of {job_id} did not complete within {timeout_s:.0f} s")

    def wait_for_state(
        self, job_id: str, states: set[str], timeout_s: float = 120, poll_s: float = 0.5
    ) -> str:
        """Poll until the job reaches one of `states` (or fails); return the state."""
        deadline = time.monotonic() + timeout_s
        state = "UNKNOWN"
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state in states:
                return state
            if state in {"FAILED", "CANCELED", "FINISHED"}:
                raise FlinkError(f"job {job_id} is {state}: {self.root_cause(job_id) or ''}")
            time.sleep(poll_s)
        raise FlinkError(f"job {job_id} is still {state} after {timeout_s:.0f} s")

    def wait_until_running(self, job_id: str, timeout_s: float = 120) -> None:
        """Wait until the job and all its tasks run (sources are reading)."""
        self.wait_for_state(job_id, {"RUNNING"}, timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job.get("state") in {"FAILED", "CANCELED", "FINISHED", "RESTARTING"}:
                raise FlinkError(
                    f"job {job_id} is {job.get('state')}: {self.root_cause(job_id) or ''}"
                )
            vertices = job.get("vertices", [])
            if vertices and all(v.get("status") == "RUNNING" for v in vertices):
                return
            time.sleep(0.5)
        raise FlinkError(f"tasks of job {job_id} did not all start within {timeout_s:.0f} s")
