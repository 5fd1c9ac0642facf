"""Replaying scored transactions through the job's own rule SQL, in-process: a local PyFlink
mini-cluster, no Kafka, no cluster. `fraudctl backtest` replays the lake; each rule's
given/expect cases (tests/rules/) replay their rows.

The script is sql_templates/replay/replay.sql.j2: the job's settings, a table over a file of
rows shaped as the job's scoring gives them (its `rule_params` ROW and `late` flag included),
then the job's views and rule templates exactly as the job renders them. Streaming mode over a
bounded file, one subtask: the rows arrive in the file's order (so, sorted by event time, none
is late), and at the end of the file the watermark passes every window and pattern. (Batch
mode would give the same windows, but MATCH_RECOGNIZE there ignores its ORDER BY, FLINK-33722.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from config import Settings


class ReplayError(RuntimeError):
    """The replay failed; the message is Flink's root cause."""


REPLAY_TEMPLATE = "replay/replay.sql.j2"
# one subtask reads the file in its order; a failure ends the replay with its cause instead of
# restarting it (the job's restart strategy would retry a bad file for ever)
REPLAY_OPTIONS = {"parallelism.default": "1", "restart-strategy.type": "none"}


def _quiet_client_logs(settings: Settings) -> None:
    """Flink's client log configuration sends Hadoop's INFO lines (one per Parquet file read)
    to the terminal: the in-process JVM gets a copy with Hadoop at WARN, kept with the stack's
    logs (PyFlink's gateway takes it from LOG4J_PROPERTIES; set once per process, before the
    JVM starts)."""
    if os.environ.get("LOG4J_PROPERTIES"):
        return
    import pyflink

    wheel = Path(pyflink.__file__).parent / "conf" / "log4j-cli.properties"
    log_dir = settings.stack.resolve(settings.stack.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    quiet = log_dir / "log4j-replay.properties"
    # written aside and moved in: another process (a test worker) may be starting its JVM
    aside = quiet.with_suffix(f".{os.getpid()}")
    aside.write_text(wheel.read_text() + "\nlogger.hadoop.level = WARN\n")
    aside.replace(quiet)
    os.environ["LOG4J_PROPERTIES"] = str(quiet)


def replay_script(
    settings: Settings, rules: Sequence[str], input_path: Path, input_format: str = "json"
) -> str:
    """The rendered replay script for `rules` reading `input_path` (`json` or `parquet`)."""
    from jobs.sql.render import context, environment

    values = {
        **context(settings, python_files=""),
        "rules": list(rules),
        "input_path": str(input_path),
        "input_format": input_format,
        # the rules that judge one transaction at a time read every row, late ones too
        "per_transaction_input": "replayed_transactions",
        "arriving_params_json": False,  # the replayed rows carry `rule_params` as a ROW
    }
    return environment().get_template(REPLAY_TEMPLATE).render(values)


def replay(
    settings: Settings,
    rules: Sequence[str],
    input_path: Path,
    input_format: str = "json",
    options: Mapping[str, str] | None = None,
    late_ids: bool = False,
) -> tuple[list[dict[str, Any]], list[str] | None]:
    """Every alert `rules` raise over the rows of `input_path` (`details` decoded), and, with
    `late_ids`, the ids of the rows the replay itself found behind the watermark."""
    from jobs.cluster.submit import java_message, statement_set, table_environment
    from jobs.sql.render import parse_script

    _quiet_client_logs(settings)
    statements = parse_script(replay_script(settings, rules, input_path, input_format))
    # no checkpoints: a replay runs once, start to end, and the final checkpoint of its
    # finished tasks can outgrow the local JobManager's checkpoint storage
    statements.settings[:] = [
        (k, v) for k, v in statements.settings if not k.startswith("execution.checkpointing.")
    ]
    statements.settings.extend({**REPLAY_OPTIONS, **(options or {})}.items())
    t_env = table_environment(statements, {})
    statement_set(t_env, statements)
    try:
        result = t_env.execute_sql("SELECT * FROM replayed_alerts")
        names = result.get_table_schema().get_field_names()
        with result.collect() as rows:
            alerts = [dict(zip(names, row, strict=True)) for row in rows]
    except Exception as exc:  # Py4JJavaError: the job failed, the cause is Java's
        raise ReplayError(f"the replay failed: {java_message(exc, root_cause=True)}") from exc
    for alert in alerts:
        alert["details"] = json.loads(alert["details"]) if alert["details"] else None
        alert["transaction_ids"] = list(alert["transaction_ids"] or [])
    late = None
    if late_ids:
        with t_env.execute_sql("SELECT transaction_id FROM late_transactions").collect() as rows:
            late = [row[0] for row in rows]
    return alerts, late
