"""CLI verbs of this package (registered on `fraudctl` by fraudctl/app.py):

- `fraudctl sink`      the Kafka -> MongoDB consumer (foreground; SIGTERM/SIGINT stop it cleanly)
- `fraudctl query ...` stats, alerts, high, windows, top
- `fraudctl evaluate`  precision and recall against the producer's ground truth
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from confluent_kafka import KafkaException
from pymongo.database import Database
from pymongo.errors import PyMongoError

from config import Settings
from fraudctl.cli_common import (
    ConfigOption,
    JsonOption,
    err_console,
    fail,
    print_json,
    print_table,
)
from fraudctl.cli_common import settings as load_cli_settings
from mongo_sink import queries
from mongo_sink.queries import QueryError

query_app = typer.Typer(
    name="query",
    help="Analytics over MongoDB `alerts` and `window_stats` (FerretDB and MongoDB alike).",
    no_args_is_help=True,
)


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pymongo").setLevel(logging.WARNING)


def sink(config: ConfigOption = None) -> None:
    """Consume `fraud_alerts` and `window_stats` into MongoDB until SIGTERM/SIGINT.

    Idempotent writes keyed by `_id`, offsets committed after MongoDB acknowledged each
    batch, retries while MongoDB is down, undecodable records to `sink_dead_letters`.
    """
    from mongo_sink.consumer import run

    s = load_cli_settings(config)
    _setup_logging()
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        logging.getLogger("mongo_sink").info("%s: finishing the batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run(s, stop)


@contextmanager
def _db(s: Settings) -> Iterator[Database]:
    from fraudctl.mongo import client_for, database

    client = client_for(s)
    try:
        yield database(client, s)
    except QueryError as exc:
        fail(str(exc), code=2)
    except PyMongoError as exc:
        fail(f"MongoDB at {s.mongo.uri.split('@')[-1]} failed: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def _time(value: str | None, name: str) -> dt.datetime | None:
    try:
        return queries.parse_user_time(value, name)
    except QueryError as exc:
        raise typer.BadParameter(str(exc)) from exc


Since = Annotated[
    str | None, typer.Option("--since", help="From this event time (ISO-8601, inclusive).")
]
Until = Annotated[
    str | None, typer.Option("--until", help="Up to this event time (ISO-8601, exclusive).")
]
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")]

ALERT_COLUMNS = [
    "event_time",
    "rule",
    "severity",
    "entity_type",
    "entity_id",
    "user_id",
    "card_last4",
    "amount",
    "score",
    "alert_id",
]


def _print_alerts(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        print_json(rows)
        return
    shown = [{**r, "entity_id": (r.get("entity_id") or "")[:12]} for r in rows]
    print_table(shown, ALERT_COLUMNS, title=f"{title} ({len(rows)})")


@query_app.command("stats")
def stats_cmd(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    top: Annotated[int, typer.Option("--top", min=1, help="How many top entities.")] = 5,
    now: Annotated[
        str | None, typer.Option("--now", help="Reference time for 'last hour' (default: now).")
    ] = None,
) -> None:
    """Totals, alerts by rule and by severity, top entities, alerts detected in the last hour."""
    s = load_cli_settings(config)
    ref = _time(now, "--now")
    with _db(s) as db:
        out = queries.stats(db, s, now=ref, top=top)
    if as_json:
        print_json(out)
        return
    totals = [
        {"metric": k, "value": out[k]}
        for k in ("total_alerts", "total_window_stats", "dead_letters", "alerts_last_hour")
    ]
    print_table(totals, ["metric", "value"], title="Totals")
    print_table(out["by_rule"], ["rule", "alerts"], title="Alerts by rule")
    print_table(out["by_severity"], ["severity", "alerts"], title="Alerts by severity")
    print_table(
        out["top_entities"],
        ["entity_type", "entity_id", "card_last4", "alerts"],
        title="Top entities",
    )


@query_app.command("alerts")
def alerts_cmd(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    alert_id: Annotated[
        str | None, typer.Option("--id", help="This alert_id only (what notifications link to).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="user_id, matched literally.")] = None,
    card_last4: Annotated[
        str | None, typer.Option("--card-last4", help="Last 4 digits of the card.")
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Rule name, e.g. VELOCITY.")] = None,
    severity: Annotated[
        str | None, typer.Option("--severity", help="LOW, MEDIUM, HIGH or CRITICAL.")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
) -> None:
    """Alerts, newest event time first, filtered by id, user, card, rule, severity and time."""
    _show_alerts(
        config, "Alerts", as_json, limit, since, until,
        alert_id=alert_id, user=user, card_last4=card_last4, rule=rule, severity=severity,
    )  # fmt: skip


@query_app.command("high")
def high_cmd(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
) -> None:
    """HIGH and CRITICAL alerts only, newest first."""
    _show_alerts(
        config, "HIGH and CRITICAL alerts", as_json, limit, since, until,
        severity=queries.HIGH_SEVERITIES,
    )  # fmt: skip


def _show_alerts(
    config: Path | None,
    title: str,
    as_json: bool,
    limit: int,
    since: str | None,
    until: str | None,
    **match: Any,
) -> None:
    """The alerts matching `match` and the time bounds, printed as a table or JSON."""
    s = load_cli_settings(config)
    flt = queries.alert_filter(
        since=_time(since, "--since"), until=_time(until, "--until"), **match
    )
    with _db(s) as db:
        rows = queries.find_alerts(db, s, flt, limit)
    _print_alerts(rows, as_json, title)


@query_app.command("windows")
def windows_cmd(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    granularity: Annotated[
        str,
        typer.Option(
            "--granularity", "-g", help="global (10-s windows) or category (1-min per category)."
        ),
    ] = "global",
    bucket: Annotated[
        str | None,
        typer.Option("--bucket", "-b", help="Roll up into 1m, 5m or 1h buckets (default: none)."),
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="Only this merchant category.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Windows starting at or after (ISO-8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Windows starting before (ISO-8601).")
    ] = None,
    limit: Limit = 1000,
) -> None:
    """Windowed analytics over a time range, as stored or rolled up to coarser buckets."""
    s = load_cli_settings(config)
    if granularity not in queries.GRANULARITIES:
        raise typer.BadParameter("use global or category", param_hint="--granularity")
    if bucket is not None and bucket not in queries.BUCKET_FIELDS:
        raise typer.BadParameter("use 1m, 5m or 1h", param_hint="--bucket")
    with _db(s) as db:
        rows = queries.windows(
            db,
            s,
            granularity=granularity,
            since=_time(since, "--since"),
            until=_time(until, "--until"),
            bucket=bucket,
            group=category,
            limit=limit,
        )
    if as_json:
        print_json(rows)
        return
    if bucket is None:
        cols = ["window_start", "window_end", "group", "txn_count", "total_amount"]
        cols += ["min_amount", "max_amount", "avg_amount", "distinct_cards"]
    else:
        cols = ["bucket_start", "bucket_end", "group", "windows", "txn_count", "total_amount"]
        cols += ["min_amount", "max_amount", "avg_amount", "max_window_distinct_cards"]
    title = f"{granularity} windows" + (f" rolled up to {bucket}" if bucket else "")
    print_table(rows, cols, title=f"{title} ({len(rows)})")


@query_app.command("top")
def top_cmd(
    what: Annotated[str, typer.Argument(help="cards, users, devices or categories.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
    by: Annotated[
        str,
        typer.Option("--by", help="alerts or amount (categories: transactions or amount)."),
    ] = "alerts",
    limit: Limit = 10,
) -> None:
    """Top cards, users, devices (by alerts or alerted amount) or categories (by volume)."""
    s = load_cli_settings(config)
    if what not in ("cards", "users", "devices", "categories"):
        raise typer.BadParameter("use cards, users, devices or categories", param_hint="WHAT")
    if by not in ("alerts", "amount", "transactions"):
        raise typer.BadParameter("use alerts, amount or transactions", param_hint="--by")
    with _db(s) as db:
        rows = queries.top(db, s, what, by, limit)  # type: ignore[arg-type]
    if as_json:
        print_json(rows)
        return
    cols = list(rows[0]) if rows else [what, by]
    print_table(rows, cols, title=f"Top {what} by {by}")


def evaluate_cmd(
    truth: Annotated[
        Path, typer.Option("--truth", exists=True, dir_okay=False, help="Producer truth JSONL.")
    ],
    alerts: Annotated[
        Path | None,
        typer.Option(
            "--alerts", exists=True, dir_okay=False, help="Alerts JSONL (default: MongoDB)."
        ),
    ] = None,
    slack: Annotated[
        int, typer.Option("--slack-s", min=0, help="Seconds around a scenario's span.")
    ] = 300,
    all_alerts: Annotated[
        bool,
        typer.Option(
            "--all-alerts",
            help="Judge every alert, not only those within the truth's event-time span.",
        ),
    ] = False,
    with_dlq: Annotated[
        bool | None,
        typer.Option(
            "--dlq/--no-dlq",
            help="Read the DLQ topic to tell which missed scenarios came too late "
            "(default: when the alerts come from MongoDB, not --alerts).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Precision and recall per rule and per scenario type against the ground truth, why each
    missed scenario was missed, and how many legit look-alikes RISK_SCORE flagged.

    By default only alerts whose event time lies in the period the truth covers are judged,
    so earlier runs in the same database do not count as false alarms."""
    from fraudctl import evaluate as ev

    s = load_cli_settings(config)
    try:
        with truth.open() as fh:
            t = ev.read_truth(fh)
        if alerts is not None:
            alert_docs = ev.read_alerts_jsonl(alerts)
        else:
            with _db(s) as db:
                alert_docs = list(
                    db[s.mongo.alerts_collection].find(
                        {},
                        {
                            "rule": 1,
                            "entity_type": 1,
                            "entity_id": 1,
                            "transaction_ids": 1,
                            "event_time": 1,
                        },
                    )
                )
    except ValueError as exc:
        fail(str(exc), code=2)
    if not all_alerts:
        alert_docs = ev.within_truth_span(alert_docs, t, dt.timedelta(seconds=slack))
    late_ids: set[str] = set()
    if with_dlq or (with_dlq is None and alerts is None):
        from fraudctl.dead_letters import late_transaction_ids

        try:
            late_ids = late_transaction_ids(s)
        except (RuntimeError, KafkaException) as exc:
            err_console.print(f"[yellow]late transactions not checked: {exc}[/]")
    result = ev.evaluate(alert_docs, t, dt.timedelta(seconds=slack), late_ids)
    if as_json:
        print_json(result)
        return
    cols = ["alerts", "tp", "fp", "unlabelled", "scenarios", "recalled", "precision", "recall"]
    all_row = {**result["all"], "rule": "ALL"}
    print_table([*result["by_rule"], all_row], ["rule", *cols], title="By rule")
    if result["all"]["unlabelled"]:
        unlabelled = [r["rule"] for r in result["by_rule"] if r["unlabelled"]]
        print(
            f"unlabelled: alerts of {', '.join(unlabelled)}, a rule no scenario of the producer "
            "is labelled with, so the truth cannot call them right or wrong (precision leaves "
            "them out; look at them with `fraudctl query alerts --rule RULE`)"
        )
    cols.remove("unlabelled")
    print_table(
        result["by_scenario_type"],
        ["scenario_type", "expected_rule", *cols],
        title="By scenario type",
    )
    looks = result["lookalikes"]
    if looks["by_type"]:
        print_table(
            looks["by_type"],
            ["lookalike_type", "lookalikes", "flagged", "flagged_fraction"],
            title=f"Legit look-alikes flagged by {looks['rule']} (false alarms)",
        )
    if result["missed"]:
        print_table(
            result["missed"],
            ["scenario_id", "scenario_type", "rule", "entity_id", "first", "why"],
            title="Missed scenarios",
        )
    tr = result["truth"]
    print(
        f"truth: {tr['scenarios']} scenarios ({tr['incomplete_scenarios']} incomplete), "
        f"{tr['lookalikes']} legit look-alikes, {tr['invalid_records']} invalid records; "
        f"match = {result['matching']}"
    )


def register(app: typer.Typer) -> None:
    """Add this package's verbs to `app`."""
    app.command("sink")(sink)
    app.add_typer(query_app, name="query")
    app.command("evaluate")(evaluate_cmd)
