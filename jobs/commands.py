"""CLI verbs of the Flink SQL job: render, explain, submit, jobs, stop (see fraudctl/app.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from config import Settings
from fraudctl.cli_common import (
    ConfigOption,
    JsonOption,
    console,
    err_console,
    fail,
    print_json,
    print_table,
    settings,
)

JobManagerOption = Annotated[
    str | None,
    typer.Option(
        "--jobmanager",
        envvar="FRAUD_FLINK__JOBMANAGER",
        help="Flink JobManager REST HOST:PORT (default flink.jobmanager). "
        "Env: FRAUD_FLINK__JOBMANAGER.",
        show_default=False,
    ),
]


def _settings_for(config: Path | None, jobmanager: str | None) -> Settings:
    """The settings, with `--jobmanager` (validated like flink.jobmanager) when given."""
    return settings(config, **({"flink": {"jobmanager": jobmanager}} if jobmanager else {}))


def render(config: ConfigOption = None) -> None:
    """Render the job's SQL script to target/job.sql and print it (like `dbt compile`)."""
    from jobs.sql.filters import SqlFilterError
    from jobs.sql.render import write_script

    s = settings(config)
    try:
        path, text = write_script(s)
    except SqlFilterError as exc:
        fail(f"cannot render: {exc}", code=2)
    typer.echo(text, nl=False)
    err_console.print(f"[dim]written to {path}[/]")


def explain(config: ConfigOption = None) -> None:
    """Print Flink's plan of the whole job (planned in-process; no cluster needed)."""
    from jobs.cluster.submit import SubmitError
    from jobs.cluster.submit import explain as explain_plan

    s = settings(config)
    try:
        with err_console.status("planning the job with Flink (starts a local JVM) ..."):
            plan = explain_plan(s)
    except SubmitError as exc:
        fail(str(exc))
    typer.echo(plan)


def submit(
    config: ConfigOption = None,
    jobmanager: JobManagerOption = None,
    from_savepoint: Annotated[
        str | None,
        typer.Option(
            "--from-savepoint",
            help="Resume from this savepoint or retained checkpoint path.",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Submit the job to the Flink cluster; print its id and web UI link."""
    from jobs.cluster.flink_client import FlinkClient, FlinkError
    from jobs.cluster.submit import SubmitError
    from jobs.cluster.submit import submit as submit_job

    s = _settings_for(config, jobmanager)
    jm = s.flink.jobmanager
    client = FlinkClient(jm)
    try:
        client.overview()
    except FlinkError as exc:
        fail(f"{exc}\nstart the local stack with `fraudctl stack up` or pass --jobmanager")
    try:
        with err_console.status(f"planning and submitting to {jm} ..."):
            submitted = submit_job(s, jm, from_savepoint, config_path=config)
        with err_console.status(f"waiting for job {submitted.job_id} to run ..."):
            client.wait_until_running(
                submitted.job_id, timeout_s=180, slots_grace_s=s.flink.slots_grace_s()
            )
    except (SubmitError, FlinkError) as exc:
        fail(str(exc))
    if json_out:
        print_json({"job_id": submitted.job_id, "web_url": client.web_url(submitted.job_id)})
        return
    console.print(f"submitted job [bold]{submitted.job_id}[/] ({s.flink.job_name})")
    console.print(f"web UI: {client.web_url(submitted.job_id)}")


def jobs(
    config: ConfigOption = None, jobmanager: JobManagerOption = None, json_out: JsonOption = False
) -> None:
    """List the cluster's jobs (newest first); a running job's `input` says whether it keeps
    pace with the input topic or, catching up, how many records it is behind and about how
    long it needs at its current read rate (from the Kafka source's own lag metrics)."""
    from jobs.cluster.flink_client import FlinkClient, FlinkError
    from jobs.cluster.input_progress import catch_up, human_duration

    jm = _settings_for(config, jobmanager).flink.jobmanager
    client = FlinkClient(jm)
    try:
        listed = client.jobs()
        behind = {j.job_id: catch_up(client, j.job_id) for j in listed if j.state == "RUNNING"}
    except FlinkError as exc:
        fail(str(exc))
    rows = []
    for j in listed:
        row = j.as_dict()
        progress = behind.get(j.job_id)
        row["input"] = (
            None
            if progress is None
            else {
                "caught_up": progress.caught_up,
                "records_behind": progress.records_behind,
                "read_per_s": round(progress.read_per_s, 1),
                "eta_s": None if progress.eta_s is None else round(progress.eta_s, 1),
                "summary": progress.describe(),
            }
        )
        rows.append(row)
    if json_out:
        print_json(rows)
        return
    for row in rows:
        row["started"] = (row["start_time"] or "").replace("T", " ").removesuffix("Z")[:16]
        row["running"] = human_duration(row["duration_s"])
        row["input"] = row["input"]["summary"] if row["input"] else ""
    print_table(
        rows,
        ["job_id", "name", "state", "started", "running", "input"],
        f"jobs on {jm} (times UTC)",
        whole={"job_id"},
    )


def stop(
    job_id: Annotated[
        str,
        typer.Argument(help="Id of the job to stop, or a unique prefix of it (`fraudctl jobs`)."),
    ],
    savepoint: Annotated[
        bool,
        typer.Option("--savepoint/--no-savepoint", help="Take a savepoint before stopping."),
    ] = True,
    savepoint_dir: Annotated[
        str | None,
        typer.Option(
            "--savepoint-dir",
            help="Savepoint target directory (default: the cluster's savepoint dir).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    jobmanager: JobManagerOption = None,
    json_out: JsonOption = False,
) -> None:
    """Stop a job with a savepoint (resume with `submit --from-savepoint PATH`), or cancel it."""
    from jobs.cluster.flink_client import FlinkClient, FlinkError
    from jobs.cluster.job_ids import JobIdError, resolve_job_id

    client = FlinkClient(_settings_for(config, jobmanager).flink.jobmanager)
    try:
        job_id = resolve_job_id(job_id, (j.job_id for j in client.jobs()))
        if not savepoint:
            client.cancel(job_id)
            result = {"job_id": job_id, "state": "CANCELED", "savepoint": None}
        else:
            with err_console.status(f"stopping {job_id} with a savepoint ...") as status:
                path = client.stop_with_savepoint(
                    job_id,
                    savepoint_dir,
                    on_progress=lambda st: status.update(f"savepoint of {job_id}: {st} ..."),
                )
            result = {"job_id": job_id, "state": "FINISHED", "savepoint": path}
    except (FlinkError, JobIdError) as exc:
        fail(str(exc))
    if json_out:
        print_json(result)
    elif result["savepoint"]:
        console.print(f"stopped {job_id}; savepoint: {result['savepoint']}")
        console.print(f"resume with: fraudctl submit --from-savepoint {result['savepoint']}")
    else:
        console.print(f"canceled {job_id}")


def _short(vertex_name: str, width: int = 110) -> str:
    """A job vertex's name (its chain of operators) cut to one readable line."""
    name = " ".join(vertex_name.split())
    return name if len(name) <= width else name[: width - 3] + "..."


def upgrade(
    job_id: Annotated[
        str | None,
        typer.Argument(
            help="Id (or unique prefix) of the job to upgrade; default: the running job named "
            "flink.job_name.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    jobmanager: JobManagerOption = None,
    json_out: JsonOption = False,
) -> None:
    """Apply a structural config change (window length, a rule on or off) to the running job:
    stop it with a savepoint, resubmit the new config from it, and name what starts from
    empty state. Thresholds need no upgrade: `fraudctl rules set`."""
    from jobs.cluster.flink_client import FlinkClient, FlinkError
    from jobs.cluster.job_ids import JobIdError, resolve_job_id
    from jobs.cluster.upgrade import UpgradeError
    from jobs.cluster.upgrade import upgrade as run_upgrade

    s = _settings_for(config, jobmanager)
    client = FlinkClient(s.flink.jobmanager)
    try:
        jobs_now = client.jobs()
        if job_id is None:
            named = [
                j.job_id for j in jobs_now if j.name == s.flink.job_name and j.state == "RUNNING"
            ]
            if len(named) != 1:
                fail(
                    f"{len(named)} running jobs are named {s.flink.job_name!r}; "
                    "pass the job id (`fraudctl jobs`)"
                )
            job_id = named[0]
        else:
            job_id = resolve_job_id(job_id, (j.job_id for j in jobs_now))
        with err_console.status("upgrading ...") as status:
            report = run_upgrade(s, client, job_id, config, on_progress=status.update)
    except (FlinkError, JobIdError, UpgradeError) as exc:
        fail(str(exc))
    if json_out:
        print_json(report.__dict__)
        return
    console.print(
        f"upgraded {report.old_job_id} -> [bold]{report.new_job_id}[/] "
        f"(from savepoint {report.savepoint})"
    )
    for title, names in (
        ("state restored", report.restored),
        ("started from empty state (new or changed in the job graph)", report.started_empty),
        ("state skipped (no longer in the job)", report.skipped),
    ):
        console.print(f"{title}: {len(names)}")
        for name in names:
            console.print(f"  {_short(name)}", highlight=False, markup=False)


def dlq(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Count the dead-letter topic by reason: invalid records and late transactions."""
    from fraudctl.dead_letters import count_by_reason

    s = settings(config)
    topic = s.kafka.topics.dlq
    try:
        with err_console.status(f"reading {topic} ...") as status:
            counts = count_by_reason(
                s, lambda read, total: status.update(f"reading {topic}: {read:,}/{total:,}")
            )
    except RuntimeError as exc:
        fail(str(exc))
    rows = [{"reason": r, "records": n} for r, n in sorted(counts.items())]
    if json_out:
        print_json({"topic": topic, "total": sum(counts.values()), "by_reason": rows})
        return
    rows.append({"reason": "total", "records": sum(counts.values())})
    print_table(rows, ["reason", "records"], f"dead letters in {topic}")


def register(app: typer.Typer) -> None:
    """Add the job verbs to `fraudctl`."""
    app.command("render")(render)
    app.command("explain")(explain)
    app.command("submit")(submit)
    app.command("jobs")(jobs)
    app.command("stop")(stop)
    app.command("upgrade")(upgrade)
    app.command("dlq")(dlq)
