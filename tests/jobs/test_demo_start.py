"""Where a demo run's event time starts (jobs/demo.py run_start) and the horizon it keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from config import load_settings
from jobs.demo import run_start

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR_MS = 3_600_000


def test_a_first_run_ends_about_now() -> None:
    assert run_start(NOW, 30, None, HOUR_MS) == NOW - timedelta(minutes=30)


def test_a_run_right_after_another_starts_past_the_longest_horizon() -> None:
    previous = NOW - timedelta(minutes=2)
    start = run_start(NOW, 30, previous, HOUR_MS)
    assert start - previous > timedelta(hours=1)


def test_a_run_long_after_another_is_not_moved() -> None:
    previous = NOW - timedelta(days=3)
    assert run_start(NOW, 30, previous, HOUR_MS) == NOW - timedelta(minutes=30)


def test_the_horizon_is_the_longest_rule_span_or_the_cooldown() -> None:
    s = load_settings()
    assert s.job.longest_horizon_ms() == 24 * HOUR_MS  # impossible_travel.within
    s = load_settings(
        job={
            "rules": {"impossible_travel": {"within": "30 min"}, "velocity": {"window": "2 h"}},
        }
    )
    assert s.job.longest_horizon_ms() == 2 * HOUR_MS
    s = load_settings(job={"rules": {"impossible_travel": {"within": "30 min"}}})
    assert s.job.longest_horizon_ms() == 30 * 60_000  # card_testing/geo_hop 10 min, cooldown 5
