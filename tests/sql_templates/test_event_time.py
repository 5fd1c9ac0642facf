"""The event-time parse of the source (macro `event_rowtime`), run by Flink in-process on every
shape the contract accepts and the bad ones it must refuse without failing."""

from __future__ import annotations

import pytest

from jobs.sql.render import environment

CASES = [
    ("2026-11-21T22:40:18.123Z", "2026-11-21 22:40:18.123"),
    ("2026-11-21T22:40:18Z", "2026-11-21 22:40:18.000"),
    ("2026-11-21T22:40:18.1Z", "2026-11-21 22:40:18.100"),
    ("2026-11-21 22:40:18.123", "2026-11-21 22:40:18.123"),
    ("1795000000123", "2026-11-18 11:06:40.123"),
    # refused: the epoch, so the watermark never moves for them
    ("2026-13-45T25:61:00.000Z", "1970-01-01 00:00:00.000"),
    ("2026-11-21T22:40:18.12XZ", "1970-01-01 00:00:00.000"),
    ("2026-13-45T25:61:00Z", "1970-01-01 00:00:00.000"),
    ("yesterday at noon, UTC!", "1970-01-01 00:00:00.000"),
    ("2026-11-21", "1970-01-01 00:00:00.000"),
    ("", "1970-01-01 00:00:00.000"),
]


@pytest.fixture(scope="module")
def parsed() -> dict[str, str]:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    sql = environment().from_string(
        "{% from 'macros.sql.j2' import event_rowtime %}"
        "SELECT t, CAST({{ event_rowtime('t') }} AS STRING) FROM (VALUES {{ rows }}) AS v(t)"
    )
    rows = ", ".join("('" + text.replace("'", "''") + "')" for text, _ in CASES)
    with t_env.execute_sql(sql.render(rows=rows)).collect() as results:
        return {row[0]: row[1] for row in results}


@pytest.mark.parametrize(("text", "rowtime"), CASES)
def test_event_time_parses_or_falls_back_to_the_epoch(parsed, text, rowtime):
    assert parsed[text] == rowtime
