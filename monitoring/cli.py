"""`fraudctl top`: the on-call figures (monitoring/figures.py) live in the terminal, read from
Prometheus: a table per figure, refreshed every few seconds; `--once` prints one snapshot,
`--json` one snapshot as JSON for scripts."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from fraudctl.cli_common import ConfigOption, JsonOption, console, fail, print_json
from fraudctl.cli_common import settings as load
from monitoring.figures import FIGURES, Figure
from monitoring.prometheus import Prometheus, PrometheusError

# the reporter writes a task's chain "A -> B -> C" as "A_____B_____C"; these links say
# nothing on call (projections, filters, the timestamp helper of MATCH_RECOGNIZE)
_CHAIN_SPLIT = re.compile(r"_{4,}")
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


def _value(value: float, unit: str) -> str:
    if value != value:  # NaN: a ratio over nothing
        return "-"
    if unit == "ratio":
        return f"{value:.0%}"
    text = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def _table(figure: Figure, section: dict[str, Any]) -> Table:
    table = Table(title=section["title"], title_justify="left", expand=False)
    for label in figure.labels:
        table.add_column(label)
    table.add_column("value", justify="right")
    for row in section["rows"]:
        table.add_row(
            *(str(row[label]) for label in figure.labels), _value(row["value"], section["unit"])
        )
    if not section["rows"]:
        table.add_row(*(["-"] * len(figure.labels)), "no data")
    return table


def render(sections: list[dict[str, Any]], url: str) -> Group:
    stamp = time.strftime("%H:%M:%S")
    tables = [_table(f, s) for f, s in zip(FIGURES, sections, strict=True)]
    return Group(f"[bold]fraudctl top[/]  {url}  {stamp}", *tables)


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
