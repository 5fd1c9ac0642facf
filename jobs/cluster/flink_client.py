"""A small client for the Flink JobManager REST API (overview, jobs, savepoints, cancel)."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

TERMINAL_STATES = frozenset({"FAILED", "CANCELED", "FINISHED"})
# states of a job that gives its task slots back (or soon will)
ENDING_STATES = TERMINAL_STATES | {"CANCELLING", "FAILING"}
# a TaskManager's memory metrics, by the key `taskmanager_jvm` gives each
JVM_MEMORY_METRICS = {
    "Status.JVM.Memory.Heap.Used": "heap_used",
    "Status.JVM.Memory.Heap.Max": "heap_max",
    "Status.JVM.Memory.Metaspace.Used": "metaspace_used",
}


class FlinkError(RuntimeError):
    """The JobManager is unreachable or answered with an error."""


class NotEnoughSlots(FlinkError):
    """A job's tasks wait for task slots that the cluster cannot give it."""


@dataclass(frozen=True)
class SlotUse:
    """The cluster's task slots: how many there are, how many each live job holds, and the
    names of those jobs."""

    total: int
    held: dict[str, int]
    names: dict[str, str] = field(default_factory=dict)


def slot_shortage(job_id: str, needed: int, slots: SlotUse) -> str | None:
    """Why job `job_id`, which needs `needed` slots, cannot start on `slots`, or None.

    A standalone cluster (the local stack, a plain session cluster) never adds slots: a job
    needing more than the cluster has, or more than other jobs leave, would wait forever.
    """
    if slots.total == 0:
        return None  # no TaskManager registered yet: one may be starting
    others = {j: n for j, n in slots.held.items() if j != job_id}
    fix = (
        "lower flink.parallelism, or add slots (stack.taskmanager_slots, stack.taskmanagers; "
        "on your own cluster taskmanager.numberOfTaskSlots)"
    )
    if needed > slots.total:
        return (
            f"job {job_id} needs {needed} task slots (its largest parallelism) and the cluster "
            f"has {slots.total} in all: {fix}"
        )
    taken = sum(others.values())
    if needed > slots.total - taken:
        holders = ", ".join(
            f"{slots.names[j]} {j} ({n})" if slots.names.get(j) else f"{j} ({n})"
            for j, n in others.items()
        )
        return (
            f"job {job_id} needs {needed} task slots; the cluster has {slots.total} and other "
            f"jobs hold {taken}: {holders}. Stop one (`fraudctl stop <job id>`), or {fix}"
        )
    return None


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

    def slot_use(self) -> SlotUse:
        """The cluster's task slots and the jobs that keep theirs (not ended or ending)."""
        keeping = {j.job_id: j.name for j in self.jobs() if j.state not in ENDING_STATES}
        total, held = 0, Counter[str]()
        for tm in self._request("GET", "/taskmanagers").get("taskmanagers", []):
            try:
                details = self._request("GET", f"/taskmanagers/{tm['id']}")
            except FlinkError:
                continue  # unregistered since the list was read: its slots are gone
            total += int(details.get("slotsNumber", 0))
            held.update(
                s["jobId"] for s in details.get("allocatedSlots", []) if s.get("jobId") in keeping
            )
        return SlotUse(total=total, held=dict(held), names=keeping)

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

    def taskmanagers_of(self, job_id: str) -> set[str]:
        """The ids of the TaskManagers the job's subtasks run on."""
        out: set[str] = set()
        for v in self.job(job_id).get("vertices", []):
            detail = self._request("GET", f"/jobs/{job_id}/vertices/{v['id']}")
            out |= {
                st["taskmanager-id"]
                for st in detail.get("subtasks", [])
                if st.get("taskmanager-id")
            }
        return out

    def failovers(self, job_id: str) -> int:
        """Failures the job has recovered from so far (its exception history)."""
        body = self._request("GET", f"/jobs/{job_id}/exceptions")
        return len(body.get("exceptionHistory", {}).get("entries", []))

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

    def _operator_metrics(
        self, job_id: str, suffix: str, aggregate: str, sources_only: bool = False
    ) -> list[tuple[str, float]]:
        """(metric id, value aggregated over subtasks) of every operator metric of the job
        whose id ends with `.<suffix>` (on source vertices only, with `sources_only`)."""
        out = []
        for v in self.job(job_id).get("vertices", []):
            if sources_only and not v.get("name", "").startswith("Source: "):
                continue
            path = f"/jobs/{job_id}/vertices/{v['id']}/subtasks/metrics"
            names = [m["id"] for m in self._request("GET", path) if m["id"].endswith(f".{suffix}")]
            if names:
                params = {"get": ",".join(names), "agg": aggregate}
                for m in self._request("GET", path, params=params):
                    out.append((m["id"], float(m.get(aggregate, 0) or 0)))
        return out

    def source_metric(self, job_id: str, metric: str, aggregate: str = "sum") -> dict[str, float]:
        """Operator metric `metric` of each source of the job (`numRecordsOut`,
        `pendingRecords`, `sourceIdleTime`, ...), aggregated over its subtasks (`sum`, `max`
        or `min`), by source name (`transactions`, ...); a source that has not registered it
        yet is left out."""
        combine = {"sum": lambda a, b: a + b, "max": max, "min": min}[aggregate]
        out: dict[str, float] = {}
        for metric_id, value in self._operator_metrics(job_id, metric, aggregate, True):
            if not metric_id.startswith("Source__"):
                continue
            source = metric_id.removeprefix("Source__").split("[", 1)[0]
            out[source] = combine(out[source], value) if source in out else value
        return out

    def rule_versions_applied(self, job_id: str) -> dict[str, int]:
        """Per rule, the version of its run-time parameters the job has applied (the metric
        `rule.<rule>.version_applied` of udfs/rule_parameters.py): the lowest over the Python
        operators that report it, each reading fraud_rules itself; -1 until a reader has
        started."""
        out: dict[str, int] = {}
        for metric_id, value in self._operator_metrics(job_id, "version_applied", "min"):
            rule = metric_id.rsplit(".", 2)[-2]
            out[rule] = min(out.get(rule, int(value)), int(value))
        return out

    def rule_reader_counts(self, job_id: str) -> dict[str, int]:
        """The job's fraud_rules readers' counts, summed: `rule_records_skipped` (records
        that were not valid versions) and `rule_reader_failures` (times a reader started
        over)."""
        return {
            name: int(sum(v for _, v in self._operator_metrics(job_id, name, "sum")))
            for name in ("rule_records_skipped", "rule_reader_failures")
        }

    def source_records(self, job_id: str) -> dict[str, int]:
        """Records each source of the job has emitted so far (summed over its subtasks), by
        source name (`transactions`, ...): how far a job has read, between checkpoints too."""
        return {k: int(v) for k, v in self.source_metric(job_id, "numRecordsOut").items()}

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

    def jobmanager_heap_used(self) -> float:
        """The JobManager's heap in use, bytes (Status.JVM.Memory.Heap.Used)."""
        values = self._request(
            "GET", "/jobmanager/metrics", params={"get": "Status.JVM.Memory.Heap.Used"}
        )
        if not values:
            raise FlinkError("the JobManager reports no heap metric")
        return float(values[0]["value"])

    def taskmanager_jvm(self) -> dict[str, dict[str, float]]:
        """Per TaskManager id: its heap (`heap_used`, `heap_max`, bytes), the metaspace its
        classes take (`metaspace_used`, bytes) and, per garbage collector
        (`G1_Young_Generation`, ...), `<collector>.count` and `<collector>.ms` so far. Two
        readings give what a stretch of a run collected."""
        prefix = "Status.JVM.GarbageCollector."
        out: dict[str, dict[str, float]] = {}
        for tm in self._request("GET", "/taskmanagers").get("taskmanagers", []):
            path = f"/taskmanagers/{tm['id']}/metrics"
            names = [
                m["id"]
                for m in self._request("GET", path)
                if m["id"] in JVM_MEMORY_METRICS
                or (m["id"].startswith(prefix) and not m["id"].startswith(prefix + "All."))
            ]
            values = {
                m["id"]: float(m["value"])
                for m in self._request("GET", path, params={"get": ",".join(names)})
            }
            out[tm["id"]] = {
                **{key: values.get(name, 0.0) for name, key in JVM_MEMORY_METRICS.items()},
                **{
                    k.removeprefix(prefix).replace(".Count", ".count").replace(".Time", ".ms"): v
                    for k, v in values.items()
                    if k.startswith(prefix)
                },
            }
        return out

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
            if state in TERMINAL_STATES:
                raise FlinkError(f"job {job_id} is {state}: {self.root_cause(job_id) or ''}")
            time.sleep(poll_s)
        raise FlinkError(f"job {job_id} is still {state} after {timeout_s:.0f} s")

    def wait_until_running(
        self, job_id: str, timeout_s: float = 120, slots_grace_s: float | None = 10
    ) -> None:
        """Wait up to `timeout_s` for the job to run, then as long for all its tasks to run
        (sources are reading).

        Tasks still waiting after `slots_grace_s`, or a job that failed after it ran, are
        checked against the cluster's slots: if the job can never get its slots
        (`slot_shortage`; Flink either leaves its tasks scheduled or restarts the job again
        and again), it is cancelled, so it does not hold the slots it got, and NotEnoughSlots
        says what to change. `slots_grace_s=None`: no such check (clusters that start
        TaskManagers on demand).
        """
        deadline = time.monotonic() + timeout_s
        next_slot_check = None if slots_grace_s is None else time.monotonic() + slots_grace_s
        state, seen_running = "UNKNOWN", False
        while time.monotonic() < deadline:
            job = self.job(job_id)
            state = str(job.get("state", "UNKNOWN"))
            if state in TERMINAL_STATES:
                raise FlinkError(f"job {job_id} is {state}: {self.root_cause(job_id) or ''}")
            vertices = job.get("vertices", [])
            if state == "RUNNING":
                if vertices and all(v.get("status") == "RUNNING" for v in vertices):
                    return
                if not seen_running:
                    deadline = time.monotonic() + timeout_s  # now as long for its tasks
                seen_running = True
            # a job that ran and now restarts failed; one restarting before it ran may be
            # waiting out a transient fault (it is checked with the tasks that wait)
            failed = state == "RESTARTING" and seen_running
            if (
                vertices
                and next_slot_check is not None
                and (failed or time.monotonic() >= next_slot_check)
            ):
                self._fail_if_short_of_slots(job_id, vertices)
                next_slot_check = time.monotonic() + 5
            if failed:
                raise FlinkError(f"job {job_id} is {state}: {self.root_cause(job_id) or ''}")
            time.sleep(0.5)
        raise FlinkError(f"tasks of job {job_id} did not all start in time (job {state})")

    def _fail_if_short_of_slots(self, job_id: str, vertices: list[dict[str, Any]]) -> None:
        # every operator of a SQL job shares one slot sharing group: a job takes as many
        # slots as its largest parallelism
        needed = max(int(v.get("parallelism", 1)) for v in vertices)
        shortage = slot_shortage(job_id, needed, self.slot_use())
        if shortage:
            with contextlib.suppress(FlinkError):  # it may have ended meanwhile
                self.cancel(job_id)
            raise NotEnoughSlots(f"{shortage}\njob {job_id} was cancelled")
