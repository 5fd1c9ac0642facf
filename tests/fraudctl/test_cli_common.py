"""The shared table printer: columns marked whole keep every character on a narrow terminal."""

from __future__ import annotations

import pytest
from rich.console import Console

from fraudctl import cli_common

JOB_ID = "0123456789abcdef0123456789abcdef"
ROW = {"job_id": JOB_ID, "name": "fraud-detection", "start_time": "2026-11-22T00:00:00Z"}
COLUMNS = ["job_id", "name", "start_time"]


@pytest.mark.parametrize("width", [30, 60, 200])
def test_a_whole_column_is_never_cut(monkeypatch, capsys, width):
    monkeypatch.setattr(cli_common, "console", Console(width=width))
    cli_common.print_table([ROW], COLUMNS, whole={"job_id"})
    assert JOB_ID in capsys.readouterr().out


def test_other_columns_still_give_way_on_a_narrow_terminal(monkeypatch, capsys):
    monkeypatch.setattr(cli_common, "console", Console(width=60))
    cli_common.print_table([ROW], COLUMNS)
    assert JOB_ID not in capsys.readouterr().out
