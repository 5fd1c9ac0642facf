"""Run the rendered statements through PyFlink: explain in-process, or submit to a cluster.

Both execute exactly the statements of the rendered script (jobs/sql/render.py `parse_script`):
the `SET` pairs become table config, DDL and views run with `execute_sql`, and the inserts
form one StatementSet. The job itself is submitted as that StatementSet's compiled plan, in
which each operator gets its own TTL (`with_state_ttls`). Submission
runs in a subprocess (`python -m jobs.cluster.submit`) so the caller's process never hosts a
JVM and a hung gateway can be killed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import Settings, load_settings
from config.stack import PROJECT_ROOT
from config.validators import duration_ms
from jobs.sql.render import JOB_TEMPLATE, JobStatements, parse_script, render_script


class SubmitError(RuntimeError):
    """The job could not be planned or submitted; the message says why."""


def connector_jar(settings: Settings) -> Path:
    """The Kafka SQL connector jar used when Flink's own lib/ does not have it."""
    if settings.flink.connector_jar:
        return Path(settings.flink.connector_jar)
    from stack.install import connector_jar as cached_jar  # the stack caches the pinned jar
    from stack.layout import Layout

    return cached_jar(Layout.from_settings(settings))


def _connector_in_flink_lib() -> bool:
    import pyflink

    lib = Path(pyflink.__file__).parent / "lib"
    return any(lib.glob("flink-sql-connector-kafka-*.jar"))


def client_config(
    settings: Settings,
    remote: str | None,
    from_savepoint: str | None,
    allow_non_restored_state: bool = False,
) -> dict:
    """Extra (non-script) options of the client: jars, target cluster, savepoint restore
    (`allow_non_restored_state`: state of operators the new job no longer has is skipped)."""
    conf: dict[str, str] = {}
    if not _connector_in_flink_lib():
        jar = connector_jar(settings)
        if not jar.exists():
            raise SubmitError(
                f"Kafka connector jar not found at {jar}; run `fraudctl stack install` "
                "or set flink.connector_jar"
            )
        conf["pipeline.jars"] = jar.resolve().as_uri()
    conf["python.client.executable"] = sys.executable
    if not settings.flink.python_executable:
        conf.setdefault("python.executable", sys.executable)
    if remote:
        host, port = remote.rsplit(":", 1)
        conf["execution.target"] = "remote"
        conf["rest.address"] = host
        conf["rest.port"] = port
        conf["jobmanager.rpc.address"] = host
    if from_savepoint:
        conf["execution.state-recovery.path"] = from_savepoint
        if allow_non_restored_state:
            conf["execution.state-recovery.ignore-unclaimed-state"] = "true"
    return conf


def table_environment(statements: JobStatements, extra: dict[str, str]) -> Any:
    """A streaming TableEnvironment with the script's SET options and the client options."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    conf = Configuration()
    for key, value in [*statements.settings, *extra.items()]:
        conf.set_string(key, value)
    env_settings = (
        EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
    )
    t_env = TableEnvironment.create(env_settings)
    for key, value in statements.settings:
        t_env.get_config().set(key, value)
    return t_env


def statement_set(t_env: Any, statements: JobStatements) -> Any:
    """Run the DDL and views, then collect the inserts into one StatementSet."""
    for stmt in statements.ddl:
        try:
            t_env.execute_sql(stmt)
        except Exception as exc:
            first = stmt.strip().splitlines()[0]
            raise SubmitError(f"Flink rejected `{first} ...`: {java_message(exc)}") from exc
    stmt_set = t_env.create_statement_set()
    for insert in statements.inserts:
        stmt_set.add_insert_sql(insert)
    return stmt_set


def java_message(exc: BaseException, root_cause: bool = False) -> str:
    """The Java exception's message in a Py4J error: the first one, or its root cause (a
    failed job's own error is the last `Caused by:`)."""
    text = str(exc)
    lines = [
        line.strip().lstrip(": ").removeprefix("Caused by: ")
        for line in text.splitlines()
        if ("Exception:" in line or "Error:" in line) and "py4j" not in line
    ]
    if lines:
        return lines[-1] if root_cause else lines[0]
    return text.strip().splitlines()[0] if text.strip() else repr(exc)


def _local_statement_set(settings: Settings, script: str | None) -> Any:
    """The script's StatementSet, in a TableEnvironment of this process (no cluster)."""
    statements = parse_script(script or render_script(settings))
    t_env = table_environment(statements, client_config(settings, None, None))
    return statement_set(t_env, statements)


def explain(settings: Settings, script: str | None = None) -> str:
    """Flink's plan of the whole statement set, planned in this process (no cluster needed)."""
    stmt_set = _local_statement_set(settings, script)
    try:
        return stmt_set.explain()
    except Exception as exc:
        raise SubmitError(f"Flink could not plan the job: {java_message(exc)}") from exc


def with_state_ttls(plan_json: str, state_ttl_ms: int, dedup_horizon_ms: int) -> tuple[str, int]:
    """The compiled plan `plan_json` with a state TTL per operator, and how many
    de-duplications by `transaction_id` alone it found.

    A job has one `table.exec.state.ttl`; a compiled plan carries a TTL per operator that
    declares its state, and Flink SQL's STATE_TTL hint reaches neither a ROW_NUMBER
    de-duplication nor an OVER aggregate. The script sets the job's TTL to the longest the job
    needs (settings.sql.j2: a card's behaviour profile in the OVER operators, which declare no
    state of their own); here every operator that declares its state gets job.state_ttl, and
    the transaction ids seen (state per transaction, the rest is per card or alert) get
    job.dedup_horizon."""
    plan = json.loads(plan_json)
    dedups = 0
    for node in plan["nodes"]:
        ttl = state_ttl_ms
        if node["type"].startswith("stream-exec-deduplicate"):
            fields = node["outputType"]["fields"]
            if [fields[i]["name"] for i in node["uniqueKeys"]] == ["transaction_id"]:
                ttl = dedup_horizon_ms
                dedups += 1
        for state in node.get("state", []):
            state["ttl"] = f"{ttl} ms"
    return json.dumps(plan), dedups


def job_plan(stmt_set: Any, settings: Settings) -> str:
    """The job's compiled plan (JSON), with job.state_ttl and job.dedup_horizon as the TTLs
    of its operators (`with_state_ttls`)."""
    try:
        compiled = stmt_set.compile_plan().as_json_string()
    except Exception as exc:
        raise SubmitError(f"Flink could not plan the job: {java_message(exc)}") from exc
    plan, changed = with_state_ttls(
        compiled, duration_ms(settings.job.state_ttl), duration_ms(settings.job.dedup_horizon)
    )
    if changed != 1:
        raise SubmitError(
            f"the job's plan has {changed} de-duplications by transaction_id, expected 1 "
            "(sql_templates/enrichment/on_time_transactions.sql.j2)"
        )
    return plan


def compile_job(settings: Settings, script: str | None = None) -> str:
    """`job_plan` of the rendered job, planned in this process (no cluster needed)."""
    stmt_set = _local_statement_set(settings, script)
    return job_plan(stmt_set, settings)


@dataclass
class Submitted:
    job_id: str
    jobmanager: str

    @property
    def web_url(self) -> str:
        return f"http://{self.jobmanager}/#/job/running/{self.job_id}/overview"


def _submit_here(
    settings: Settings,
    jobmanager: str,
    from_savepoint: str | None,
    template: str = JOB_TEMPLATE,
    allow_non_restored_state: bool = False,
) -> str:
    # Python workers run as processes on the TaskManagers; without this PyFlink may start a
    # "loopback" worker server in this short-lived client process.
    os.environ["_python_worker_execution_mode"] = "process"  # noqa: SIM112 (PyFlink reads it so)
    statements = parse_script(render_script(settings, template=template))
    conf = client_config(settings, jobmanager, from_savepoint, allow_non_restored_state)
    t_env = table_environment(statements, conf)
    stmt_set = statement_set(t_env, statements)
    if template == JOB_TEMPLATE:
        from pyflink.table import CompiledPlan, PlanReference

        plan = PlanReference.from_json_string(job_plan(stmt_set, settings))
        # built here: PyFlink 2.2's load_plan hands the Java environment to CompiledPlan, whose
        # execute() then fails calling a Python method on it
        compiled = CompiledPlan(t_env._j_tenv.loadPlan(plan._j_plan_reference), t_env)
        result = compiled.execute()
    else:
        result = stmt_set.execute()
    client = result.get_job_client()
    if client is None:
        raise SubmitError("Flink returned no job client")
    return str(client.get_job_id())


def submit(
    settings: Settings,
    jobmanager: str | None = None,
    from_savepoint: str | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    timeout_s: float = 300,
    template: str = JOB_TEMPLATE,
    allow_non_restored_state: bool = False,
) -> Submitted:
    """Submit the job (or the script of another `template`) to `jobmanager` (default
    flink.jobmanager) from a subprocess."""
    jm = jobmanager or settings.flink.jobmanager
    args = [sys.executable, "-m", "jobs.cluster.submit", "--jobmanager", jm, "--template", template]
    if from_savepoint:
        args += ["--from-savepoint", from_savepoint]
    if allow_non_restored_state:
        args.append("--allow-non-restored-state")
    if config_path:
        args += ["--config", str(config_path)]
    env = dict(os.environ)
    if overrides:
        env["FRAUD_SUBMIT_OVERRIDES"] = json.dumps(overrides)
    try:
        proc = subprocess.run(
            args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as exc:
        raise SubmitError(f"submission to {jm} did not finish within {timeout_s:.0f} s") from exc
    for line in proc.stdout.splitlines():
        if line.startswith("JOB_ID="):
            return Submitted(job_id=line.removeprefix("JOB_ID=").strip(), jobmanager=jm)
    detail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    raise SubmitError(f"submission to {jm} failed:\n{detail}")


def main(argv: list[str] | None = None) -> int:
    """Subprocess entry point: render, plan and submit; print JOB_ID=<id>."""
    parser = argparse.ArgumentParser(prog="python -m jobs.cluster.submit")
    parser.add_argument("--jobmanager", required=True)
    parser.add_argument("--from-savepoint")
    parser.add_argument("--config")
    parser.add_argument("--template", default=JOB_TEMPLATE)
    parser.add_argument("--allow-non-restored-state", action="store_true")
    ns = parser.parse_args(argv)
    overrides = json.loads(os.environ.get("FRAUD_SUBMIT_OVERRIDES") or "{}")
    settings = load_settings(ns.config, **overrides)
    try:
        job_id = _submit_here(
            settings, ns.jobmanager, ns.from_savepoint, ns.template, ns.allow_non_restored_state
        )
    except SubmitError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"JOB_ID={job_id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
