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

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
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


def write_replay_input(table: Any, history: Any, path: Path) -> None:
    """The lake's rows (a pyarrow Table shaped as the lake's transactions) as the replay's
    input (sql_templates/replay/replay.sql.j2), with the parameters `history`
    (udfs/rule_parameters.py ParameterHistory) gives each row at its event time, as one
    Parquet file read in order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from udfs.rule_parameters import columns

    times = table["event_time"].cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy()
    params = history.columns_at(np.asarray(times, dtype=np.int64))
    types = {
        "BOOLEAN": pa.bool_(),
        "INT": pa.int32(),
        "DOUBLE": pa.float64(),
        "STRING": pa.string(),
    }
    struct = pa.StructArray.from_arrays(
        [pa.array(params[name], type=types[t]) for name, t in columns().items()],
        names=list(columns()),
    )
    event_time = pc.strftime(
        table["event_time"].cast(pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%SZ"
    )
    replayed = table.select(
        [
            "transaction_id", "card_token", "card_last4", "user_id", "device_id", "amount",
            "currency", "merchant", "merchant_category", "channel", "city", "state", "lat",
            "lon", "risk_score",
        ]
    )  # fmt: skip
    replayed = (
        replayed.append_column("rule_params", struct)
        .append_column("late", table["late"])
        .append_column("kafka_partition", table["kafka_partition"])
        .append_column("kafka_offset", table["kafka_offset"])
        .append_column("event_time", event_time)
    )
    # one row group: Flink reads a file's row groups as splits in no fixed order; no dictionary
    # pages: Flink's columnar reader cannot decode them in nested columns (rule_params)
    pq.write_table(replayed, path, row_group_size=max(replayed.num_rows, 1), use_dictionary=False)


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


def _replay_environment(
    settings: Settings,
    rules: Sequence[str],
    input_path: Path,
    input_format: str,
    options: Mapping[str, str] | None,
) -> Any:
    """A local table environment holding the replay script's tables and views."""
    from jobs.cluster.submit import statement_set, table_environment
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
    return t_env


@contextlib.contextmanager
def _replay_errors() -> Iterator[None]:
    """A replay job that fails raises ReplayError with Flink's root cause."""
    from jobs.cluster.submit import java_message

    try:
        yield
    except Exception as exc:  # Py4JJavaError: the job failed, the cause is Java's
        raise ReplayError(f"the replay failed: {java_message(exc, root_cause=True)}") from exc


def _collect(t_env: Any, query: str) -> list[dict[str, Any]]:
    """The rows of `query`, each a dict."""
    with _replay_errors():
        result = t_env.execute_sql(query)
        names = result.get_table_schema().get_field_names()
        with result.collect() as rows:
            return [dict(zip(names, row, strict=True)) for row in rows]


# what training reads of each on-time transaction: what the live job's RISK_SCORE scores it
# with (sql_templates/rules/risk_score.sql.j2), from the same view
CARD_FEATURES_COLUMNS = {
    "transaction_id": ("to_txn", "STRING"),
    "event_time": ("CAST(rowtime AS TIMESTAMP(3))", "TIMESTAMP(3)"),
    "card_token": ("card_token", "STRING"),
    "amount": ("CAST(amount AS DOUBLE)", "DOUBLE"),
    "channel": ("channel", "STRING"),
    "merchant_category": ("merchant_category", "STRING"),
    "currency": ("currency", "STRING"),
    "hour": ("HOUR(rowtime)", "BIGINT"),
    "risk_score": ("risk_score", "DOUBLE"),
    "behaviour": ("behaviour", "STRING"),
}


def card_features(settings: Settings, input_path: Path, output_dir: Path) -> Path:
    """Each on-time row of `input_path` (Parquet, `write_replay_input`) with its behaviour
    features (`behaviour`, JSON text) computed by the job's own card_legs view, written as
    Parquet files under `output_dir` (returned): collecting hundreds of thousands of rows
    through PyFlink's gateway one at a time would take minutes."""
    from jobs.sql.filters import sql_ident, sql_string

    t_env = _replay_environment(settings, [], input_path, "parquet", None)
    columns = ", ".join(f"{sql_ident(n)} {t}" for n, (_, t) in CARD_FEATURES_COLUMNS.items())
    select = ", ".join(f"{e} AS {sql_ident(n)}" for n, (e, _) in CARD_FEATURES_COLUMNS.items())
    with _replay_errors():
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE card_features_out ({columns}) WITH ("
            f"'connector' = 'filesystem', 'path' = {sql_string(str(output_dir))}, "
            "'format' = 'parquet')"
        )
        t_env.execute_sql(f"INSERT INTO card_features_out SELECT {select} FROM card_legs").wait()
    return output_dir


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
    t_env = _replay_environment(settings, rules, input_path, input_format, options)
    alerts = _collect(t_env, "SELECT * FROM replayed_alerts")
    for alert in alerts:
        alert["details"] = json.loads(alert["details"]) if alert["details"] else None
        alert["transaction_ids"] = list(alert["transaction_ids"] or [])
    late = None
    if late_ids:
        late = [
            r["transaction_id"]
            for r in _collect(t_env, "SELECT transaction_id FROM late_transactions")
        ]
    return alerts, late
