"""Pieces every CLI verb shares: loading config, printing tables or JSON, failing cleanly."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from config import ConfigError, Settings, load_settings

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="FRAUD_CONFIG",
        help="YAML config file (default config/default.yaml). Env: FRAUD_CONFIG.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` to stderr in red and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Load settings, turning a bad config into a clear error and exit status 2."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(str(exc), code=2)


def utc_option(value: str, option: str) -> dt.datetime:
    """An ISO-8601 option value (UTC unless it says otherwise, e.g. `--from 2026-12-01T00:00`)
    as an aware datetime; a bad one is a usage error naming the option."""
    from fraudctl.times import parse_time

    parsed = parse_time(value)
    if parsed is None:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time (UTC)", param_hint=option)
    return parsed


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")


def cell(value: Any, money: bool = False) -> str:
    """A value as a table shows it: empty for None, a float to 2 decimals (4 significant digits
    below 1, where scores and ratios live, unless it is `money`), anything else as text."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if money or abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def print_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    whole: Collection[str] = (),
) -> None:
    """Print rows as a rich table with the given column order.

    When the table is wider than the terminal, each row is printed as a block of `column
    value` lines instead, so no value is ever cut (the values an analyst came to read).
    Columns in `whole` (ids meant to be copied) are never wrapped in the table. Columns named
    for an amount (`amount`, `total_amount`, `avg_amount` ...) show money: always 2 decimals.
    """
    money = ["amount" in c for c in columns]
    cells = [[cell(row.get(c), m) for c, m in zip(columns, money, strict=True)] for row in rows]
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        if col in whole:
            widest = max([cell_len(col), *(cell_len(r[i]) for r in cells)])
            table.add_column(col, no_wrap=True, min_width=widest)
        else:
            table.add_column(col)
    for r in cells:
        table.add_row(*r)
    natural = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    if natural <= console.width:
        console.print(table, crop=False)
        return
    if title:
        console.print(f"[italic]{title}[/]", highlight=False)
    label = max(cell_len(c) for c in columns)
    for r in cells:
        console.print()
        for col, value in zip(columns, r, strict=True):
            console.print(f"[bold]{col:<{label}}[/]  {value}", highlight=False, markup=True)
