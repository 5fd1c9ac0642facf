"""`fraudctl top`: the on-call figures (monitoring/figures.py) live in the terminal, read from
Prometheus, on one screen (per rule, per dead-letter reason, per job, the busiest tasks, the sink
and the notifier), refreshed every few seconds; `--once` prints one snapshot, `--json` one
snapshot as JSON for scripts (every figure with its rows)."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer
from rich.columns import Columns
from rich.console import Group
from rich.live import Live
from rich.table import Table

from fraudctl.cli_common import ConfigOption, JsonOption, console, fail, print_json
from fraudctl.cli_common import settings as load
from monitoring.figures import FIGURES
from monitoring.prometheus import Prometheus, PrometheusError

# the reporter writes a task's chain "A -> B -> C" as "A_____B_____C"; these links say
# nothing on call (projections, filters, the timestamp helper of MATCH_RECOGNIZE)
_CHAIN_SPLIT = re.compile(r"_{3,}")
_PLUMBING = re.compile(r"^[_(]*(Calc|PythonCalc|StreamRecordTimestampInserter)_\d+[_)]*$")
_COMMITTER = re.compile(r"_:_Committer_*$")


def short_task(name: str) -> str:
    """A task's chain as a person reads it: its operators without the plumbing, e.g.
    `Deduplicate_7 > high_value_alerts_kafka_9_:_Writer`."""
    parts = [p.strip("_") for p in _CHAIN_SPLIT.split(name)]
    kept = [p for p in parts if p and not _PLUMBING.match(p) and not _COMMITTER.search(p)]
    return " > ".join(kept or parts[:1])


def snapshot(prometheus: Prometheus) -> list[dict[str, Any]]:
    """Every figure now: `title`, `unit` and its `rows` (the naming labels and `value`)."""
    out = []
    for figure in FIGURES:
        rows = []
        for sample in prometheus.query(figure.query):
            row: dict[str, Any] = {label: sample.labels.get(label, "") for label in figure.labels}
            if "task_name" in row:
                row["task_name"] = short_task(row["task_name"])
            row["value"] = sample.value
            rows.append(row)
        rows.sort(
            key=lambda r: (-r["value"]) if figure.unit == "ratio" else tuple(map(str, r.values()))
        )
        if figure.unit == "ratio":
            rows = rows[:5]
        out.append({"title": figure.title, "unit": figure.unit, "rows": rows})
    return out


def _value(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if value != value:  # NaN: a ratio over nothing
        return "-"
    if unit == "ratio":
        return f"{value:.0%}"
    text = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def _merge(
    by_title: dict[str, dict[str, Any]], keys: tuple[str, ...], columns: dict[str, str]
) -> dict[tuple[str, ...], dict[str, float]]:
    """Rows of several figures joined on their `keys` labels: key -> {column: value}, the
    columns named by `columns` (figure title -> column)."""
    out: dict[tuple[str, ...], dict[str, float]] = {}
    for title, column in columns.items():
        for row in by_title[title]["rows"]:
            out.setdefault(tuple(str(row.get(k, "")) for k in keys), {})[column] = row["value"]
    return dict(sorted(out.items()))


def _table(
    title: str,
    keys: tuple[str, ...],
    rows: dict[tuple[str, ...], dict[str, float]],
    columns: dict[str, str],
) -> Table:
    """A table of merged rows: the key columns, then each value column (name -> unit)."""
    table = Table(title=title, title_justify="left", expand=False)
    for key in keys:
        table.add_column(key)
    for column in columns:
        table.add_column(column, justify="right")
    for key, values in rows.items():
        table.add_row(*key, *(_value(values.get(c), unit) for c, unit in columns.items()))
    if not rows:
        table.add_row(*(["-"] * len(keys)), "no data", *([""] * (len(columns) - 1)))
    return table


def render(sections: list[dict[str, Any]], url: str) -> Group:
    """The figures compactly, one screen: per rule, per dead-letter reason, per job, the
    busiest tasks, the sink and the notifier, the scrape targets."""
    by = {s["title"]: s for s in sections}
    job, rule, reason = ("job_name",), ("job_name", "rule"), ("job_name", "reason")
    rules = _merge(
        by,
        rule,
        {
            "alerts by rule (since job start)": "alerts",
            "alerts by rule (last 5 min)": "last 5 min",
            "rule versions applied": "version",
        },
    )
    dead = _merge(
        by,
        reason,
        {
            "dead letters by reason (since job start)": "dead letters",
            "dead letters by reason (last 5 min)": "last 5 min",
        },
    )
    jobs = _merge(
        by,
        job,
        {
            "job input lag (records)": "input lag",
            "late events": "late events",
            "re-deliveries counted once": "re-deliveries",
            "last checkpoint duration": "last checkpoint",
            "failed checkpoints": "failed checkpoints",
            "restarts": "restarts",
        },
    )
    tasks = _merge(
        by,
        ("job_name", "task_name"),
        {"busiest tasks (busy share)": "busy", "back-pressured tasks": "back-pressured"},
    )
    tasks = dict(sorted(tasks.items(), key=lambda kv: -(kv[1].get("busy") or 0))[:5])
    consumers: dict[tuple[str, ...], dict[str, float]] = {}
    for title, what, label in (
        ("sink consumer lag (records)", "sink lag", "topic"),
        ("sink documents written", "sink written", "collection"),
        ("notify consumer lag (records)", "notify lag", "topic"),
    ):
        for row in by[title]["rows"]:
            consumers[(what, row[label])] = {"value": row["value"]}
    for row in by["notifications"]["rows"]:
        consumers[("notifications", f"{row['destination']} {row['outcome']}")] = {
            "value": row["value"]
        }
    up = ", ".join(f"{r['job']} {_value(r['value'])}" for r in by["scrape targets up"]["rows"])
    return Group(
        f"[bold]fraudctl top[/]  {url}  {time.strftime('%H:%M:%S')}  targets up: {up or '-'}",
        Columns(
            [
                _table(
                    "alerts by rule", rule, rules, {"alerts": "", "last 5 min": "", "version": ""}
                ),
                _table("dead letters", reason, dead, {"dead letters": "", "last 5 min": ""}),
            ]
        ),
        _table(
            "jobs",
            job,
            jobs,
            {
                "input lag": "",
                "late events": "",
                "re-deliveries": "",
                "last checkpoint": "ms",
                "failed checkpoints": "",
                "restarts": "",
            },
        ),
        _table(
            "busiest tasks",
            ("job_name", "task_name"),
            tasks,
            {"busy": "ratio", "back-pressured": "ratio"},
        ),
        _table("sink and notify", ("figure", "of"), consumers, {"value": ""}),
    )


def top(
    config: ConfigOption = None,
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            envvar="FRAUD_PROMETHEUS_URL",
            help="Prometheus base URL (default: the local stack's, http://stack.host:"
            "stack.ports.prometheus). Env: FRAUD_PROMETHEUS_URL.",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option("--interval", min=1.0, help="Seconds between refreshes of the live view."),
    ] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one snapshot and exit (no live view).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """The on-call figures live from Prometheus: alerts per rule, dead letters, late events,
    re-deliveries, rule versions, lags, checkpoints, busy tasks, notifications. Exit 1 when
    Prometheus cannot be reached."""
    s = load(config)
    url = prometheus or f"http://{s.stack.host}:{s.stack.ports.prometheus}"
    client = Prometheus(url)
    try:
        sections = snapshot(client)
    except PrometheusError as exc:
        fail(str(exc))
    if as_json:
        print_json({"prometheus": url, "at": time.time(), "figures": sections})
        return
    if once:
        console.print(render(sections, url))
        return
    with Live(render(sections, url), console=console, refresh_per_second=1) as live:
        try:
            while True:
                time.sleep(interval)
                try:
                    live.update(render(snapshot(client), url))
                except PrometheusError as exc:
                    live.update(Group(render(sections, url), f"[red]{exc}[/]"))
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command("top")(top)
