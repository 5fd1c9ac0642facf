"""Retry-After, back-off and the token bucket, on a fake clock."""

from __future__ import annotations

import datetime as dt

import pytest

from notify.retry import TokenBucket, Transient, backoff_s, next_wait_s, parse_retry_after

NOW = dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("Mon, 07 Dec 2026 12:00:30 GMT", 30.0),  # an HTTP date
        ("Mon, 07 Dec 2026 11:59:00 GMT", 0.0),  # in the past: now
        ("Monday, 07-Dec-26 12:01:00 GMT", 60.0),  # the obsolete forms RFC 9110 accepts
        ("Mon Dec  7 12:01:00 2026", 60.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header, seconds) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_backoff_doubles_from_initial_up_to_max() -> None:
    assert [backoff_s(n, 0.5, 4.0) for n in range(0, 7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_s(10_000, 0.5, 30.0) == 30.0  # no overflow for huge attempt numbers


def test_a_longer_retry_after_wins_even_past_the_cap() -> None:
    assert next_wait_s(1, Transient("http_429", 7.0), 0.5, 4.0) == 7.0
    assert next_wait_s(4, Transient("http_429", 1.0), 0.5, 30.0) == 4.0
    assert next_wait_s(2, Transient("http_500"), 0.5, 30.0) == 1.0


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeTime()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.5)  # the 4th waits for the next token
    assert bucket.reserve() == pytest.approx(1.0)  # the 5th queues behind it
    clock.t += 1.0  # both reserved tokens have arrived; nothing saved up
    assert bucket.reserve() == pytest.approx(0.5)
    clock.t += 60.0  # a long pause saves up at most `burst`
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() > 0


def test_token_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1, FakeTime())
