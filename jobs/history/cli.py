"""CLI verbs of history: `backtest` (a rule change tried on the lake's transactions) and `lake`
(what the lake holds). See fraudctl/app.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from fraudctl.cli_common import (
    ConfigOption,
    JsonOption,
    cell,
    err_console,
    fail,
    print_json,
    print_table,
    settings,
    utc_option,
)


def backtest(
    start: Annotated[
        str,
        typer.Option(
            "--from", help="Event time the range starts at (ISO-8601, UTC).", show_default=False
        ),
    ],
    end: Annotated[
        str,
        typer.Option(
            "--to", help="Event time the range ends before (ISO-8601, UTC).", show_default=False
        ),
    ],
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A candidate change, RULE.KEY=VALUE (repeatable), validated as `rules set` "
            "validates it; without one the replay shows what the live job raised.",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            exists=True,
            dir_okay=False,
            help="Ground truth in the producer's truth-file format (`fraudctl produce "
            "--truth`): precision and recall per rule.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Try a rule change on history: replay the lake's transactions of a time range through the
    job's own rule SQL, with the parameters as they were and with the change, and compare."""
    from confluent_kafka import KafkaException

    from config.rule_changes import RuleChangeError
    from fraudctl.evaluate import read_truth
    from jobs.cluster.submit import SubmitError
    from jobs.history.backtest import parse_changes, run
    from jobs.history.lake import LakeError, transactions
    from jobs.history.replay import ReplayError
    from jobs.rule_admin.versions import current_history

    s = settings(config)
    since, until = utc_option(start, "--from"), utc_option(end, "--to")
    if until <= since:
        fail(f"--to ({end}) must be after --from ({start})", code=2)
    try:
        changes = parse_changes(s, assignments or [])
    except RuleChangeError as exc:
        fail(str(exc), code=2)
    truth = None
    if labels is not None:
        try:
            with labels.open() as fh:
                truth = read_truth(fh)
        except ValueError as exc:
            fail(f"{labels}: {exc}", code=2)
    try:
        with err_console.status("reading the lake ...") as status:
            table = transactions(s, since, until)
            status.update("reading the rules' versions (fraud_rules) ...")
            history = current_history(s)
            result = run(
                s, since, until, table, changes, history,
                progress=lambda m: status.update(m + " ..."),
            )  # fmt: skip
    except (LakeError, SubmitError, ReplayError) as exc:
        fail(str(exc))
    except (TimeoutError, KafkaException) as exc:  # fraud_rules could not be read
        fail(f"reading {s.kafka.topics.rules}: {type(exc).__name__}: {exc}")
    if json_out:
        print_json(result.document(truth))
        return
    rules = result.rules(truth)
    rows = []
    for r in rules:
        now, then = r["current"], r["candidate"]
        row = {
            "rule": r["rule"],
            "alerts": f"{now['alerts']} -> {then['alerts']}" if changes else now["alerts"],
            "added": r["added"],
            "removed": r["removed"],
            "cards": f"{now['cards']} -> {then['cards']}" if changes else now["cards"],
            "amount": f"{now['amount']:,.2f} -> {then['amount']:,.2f}"
            if changes
            else now["amount"],
        }
        if truth is not None:
            for key in ("precision", "recall"):
                a, b = now[key], then[key]
                row[key] = f"{cell(a)} -> {cell(b)}" if changes else cell(a)
        rows.append(row)
    columns = ["rule", "alerts", "added", "removed", "cards", "amount"]
    if truth is not None:
        columns += ["precision", "recall"]
    what = (
        ", ".join(f"{c.rule}.{k}={v}" for c in changes for k, v in c.changes.items())
        or "no change: as the job ran"
    )
    print_table(
        rows,
        columns,
        f"backtest of {result.transactions:,} transactions, {since:%Y-%m-%d %H:%M} to "
        f"{until:%Y-%m-%d %H:%M} UTC ({what})",
    )


lake_app = typer.Typer(
    help="The Parquet lake the job writes. With no command: what it holds, per table "
    "(partitions and how many are complete, files, rows, size, oldest and newest time); "
    "`compact` merges each complete partition's files into one.",
    invoke_without_command=True,
)


@lake_app.callback()
def lake(ctx: typer.Context, config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """What the lake holds: per table, partitions (and how many are complete), files, rows,
    bytes, and the oldest and newest time in it. `fraudctl lake compact` merges files."""
    if ctx.invoked_subcommand is not None:  # `lake --config X compact`: the command's too
        ctx.obj = {"config": config, "json": json_out}
        return
    from jobs.history.lake import LakeError, summary

    s = settings(config)
    try:
        rows = [dataclasses.asdict(t) for t in summary(s)]
    except LakeError as exc:
        fail(str(exc))
    if json_out:
        print_json({"path": s.lake_uri(), "tables": rows})
        return
    for row in rows:
        row["partitions"] = f"{row['partitions']} ({row.pop('complete_partitions')} complete)"
        row["size"] = f"{row.pop('bytes') / 1e6:,.1f} MB"
    print_table(
        rows,
        ["table", "partitions", "files", "rows", "size", "oldest", "newest"],
        f"lake at {s.lake_uri()}",
    )


@lake_app.command("compact")
def compact(
    ctx: typer.Context,
    min_age: Annotated[
        float,
        typer.Option(
            "--min-age",
            min=0,
            help="Minutes a partition must have gone unwritten (besides being complete) before "
            "its files are merged; keep it above a few checkpoint intervals.",
        ),
    ] = 10,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be merged.")
    ] = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Merge the files of each complete partition (one per checkpoint the job wrote into it)
    into one, safely beside the running job; run it hourly, from cron say."""
    from jobs.history.compaction import compact as run_compaction
    from jobs.history.lake import LakeError

    given = ctx.obj or {}
    config = config or given.get("config")
    json_out = json_out or given.get("json", False)
    s = settings(config)
    try:
        with err_console.status("compacting the lake ...") as status:
            done = run_compaction(
                s,
                dt.timedelta(minutes=min_age),
                dry_run=dry_run,
                progress=lambda m: status.update(m + " ..."),
            )
    except (LakeError, OSError) as exc:
        fail(str(exc))
    rows = [dataclasses.asdict(c) for c in done]
    if json_out:
        print_json({"path": s.lake_uri(), "dry_run": dry_run, "partitions": rows})
        return
    for row in rows:
        after = row.pop("bytes_after")
        row["before"] = f"{row.pop('bytes_before') / 1e6:,.1f} MB"
        row["after"] = f"{after / 1e6:,.1f} MB" if after else "-"
        row["skipped"] = row["skipped"] or ""
    merged = [c for c in done if c.skipped is None]
    title = (
        f"{'would merge' if dry_run else 'merged'} {sum(c.files for c in merged):,} files of "
        f"{len(merged)} partitions at {s.lake_uri()}"
    )
    print_table(rows, ["table", "partition", "files", "rows", "before", "after", "skipped"], title)


def register(app: typer.Typer) -> None:
    """Add the history verbs to `fraudctl`."""
    app.command("backtest")(backtest)
    app.add_typer(lake_app, name="lake")
