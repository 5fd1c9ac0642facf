"""Pure: what a send attempt came to, when to try again, and how fast a destination may be sent to.

Every function takes the time as an argument (or a clock), so the tests drive a fake clock.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    """The destination accepted the message."""

    detail: str = ""


@dataclass(frozen=True)
class Transient:
    """Worth retrying (429, 5xx, SMTP 4xx, no connection); `retry_after_s` is the server's ask."""

    reason: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Permanent:
    """Retrying cannot help (other 4xx, SMTP 5xx, a refused address): dead-letter it."""

    reason: str


Outcome = Sent | Transient | Permanent


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from an HTTP `Retry-After` header: delta-seconds or an HTTP date
    (RFC 9110), never negative; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" or no zone: RFC 9110 dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """The wait after failed attempt number `attempt` (1, 2, ...): initial, doubling, capped."""
    if attempt < 1:
        return 0.0
    return min(initial_s * 2 ** min(attempt - 1, 62), max_s)


def next_wait_s(attempt: int, outcome: Transient, initial_s: float, max_s: float) -> float:
    """How long to wait before the next attempt: the back-off, or the server's Retry-After
    when that is longer (honoured even past `max_s`: the total retry time still caps it)."""
    wait = backoff_s(attempt, initial_s, max_s)
    if outcome.retry_after_s is not None:
        wait = max(wait, outcome.retry_after_s)
    return wait


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; one token per message.

    `reserve()` takes a token and returns how long to wait before using it (0 when one was
    there), so concurrent callers queue fairly without holding a lock while they wait.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def reserve(self) -> float:
        """Take one token; seconds to wait until it is really there."""
        self._refill()
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
