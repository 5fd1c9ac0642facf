"""The shared table printer: no value is ever cut, on any terminal; numbers read as numbers."""

from __future__ import annotations

import pytest
from rich.console import Console

from fraudctl import cli_common

JOB_ID = "0123456789abcdef0123456789abcdef"
ROW = {
    "job_id": JOB_ID,
    "name": "fraud-detection-with-a-long-name",
    "start_time": "2026-11-22T00:00:00Z",
    "parameters": "severity=MEDIUM, amount_over=500.0",
}
COLUMNS = list(ROW)


@pytest.mark.parametrize("width", [60, 80, 200])
def test_every_value_is_shown_whole_at_any_width(monkeypatch, capsys, width):
    monkeypatch.setattr(cli_common, "console", Console(width=width))
    cli_common.print_table([ROW, {**ROW, "job_id": "f" * 32}], COLUMNS, whole={"job_id"})
    out = capsys.readouterr().out
    for value in [*ROW.values(), "f" * 32]:
        assert value in out, (width, value)


def test_a_table_too_wide_for_the_terminal_prints_one_block_per_row(monkeypatch, capsys):
    monkeypatch.setattr(cli_common, "console", Console(width=80))
    cli_common.print_table([ROW, ROW], COLUMNS, title="jobs")
    lines = capsys.readouterr().out.splitlines()
    assert not any("┃" in line for line in lines)  # no table
    assert [line.split()[0] for line in lines if line.startswith("job_id")] == ["job_id"] * 2
    assert max(len(line) for line in lines) <= 80


def test_a_table_that_fits_stays_a_table(monkeypatch, capsys):
    monkeypatch.setattr(cli_common, "console", Console(width=200))
    cli_common.print_table([ROW], COLUMNS)
    assert "┃ job_id" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "shown"),
    [(57.442264529058114, "57.44"), (1234567.891, "1,234,567.89"), (0.812345, "0.8123"),
     (0.0, "0"), (None, ""), (3, "3"), ("x", "x")],
)  # fmt: skip
def test_floats_are_rounded_for_reading(value, shown):
    assert cli_common.cell(value) == shown


def test_amount_columns_show_money_with_two_decimals_even_under_one(capsys):
    cli_common.print_table(
        [
            {"category": "grocery", "avg_amount": 0.6, "score": 0.6},
            {"category": "travel", "avg_amount": 3.0, "score": 0.25},
        ],
        ["category", "avg_amount", "score"],
    )
    out = capsys.readouterr().out
    assert "0.60" in out and "3.00" in out  # amounts
    assert "0.25" in out and "0.6 " in out  # a score keeps its significant digits
