"""One notification, from claim to settled: claim it, wait for the rate limit, send, retry
transient failures with back-off, and record the outcome (sent or dead-lettered) on the claim.

`Deliverer.deliver` returns only when the notification is settled, or when the notifier is
stopping (then its claim is released, the alert's offset is not committed, and the next
notifier finishes it). MongoDB unreachable: the same step is retried with back-off, never
skipped. Time comes from `now` and waits go through `wait` (stop-aware), so tests drive a fake
clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from config.notify import NotifySettings
from fraudctl.mongo import MongoUnavailable
from notify.claims import Acquired, Step
from notify.destinations import Destination
from notify.messages import Notification
from notify.retry import Permanent, Sent, TokenBucket, Transient, next_wait_s

log = logging.getLogger("notify")

Result = Literal["sent", "dead_lettered", "duplicate_skipped", "stopped"]
# test-only hook (FRAUD_NOTIFY_TEST_PAUSE): stop right after this step until killed
PAUSE_POINTS = ("after_claim", "after_send")
RETRIES_EXHAUSTED = "retries_exhausted"
MONGO_RETRY_MAX_S = 5.0
REMINDER_EVERY_S = 30.0


class Book(Protocol):
    """What delivery needs of notify.claims.ClaimBook (tests give a fake)."""

    def acquire(self, alert: dict[str, Any], destination: str) -> Acquired: ...
    def renew(
        self, cid: str, attempts: int, extra_s: float = 0.0, error: str | None = None
    ) -> None: ...
    def release(self, cid: str) -> None: ...
    def mark_sent(self, cid: str, attempts: int, detail: str) -> None: ...
    def dead_letter(
        self, cid: str, alert: dict[str, Any], destination: str, reason: str, attempts: int,
        last_error: str | None = None,
    ) -> None: ...  # fmt: skip


class Stopped(Exception):
    """The notifier is stopping: leave the notification for the next one."""


class Deliverer:
    """Delivers notifications to one destination, one at a time."""

    def __init__(
        self,
        destination: Destination,
        book: Book,
        settings: NotifySettings,
        *,
        count: Callable[[str, str], None],
        now: Callable[[], dt.datetime],
        wait: Callable[[float], bool],
        pause_at: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.dest = destination
        self.book = book
        self.s = settings
        self.count = count  # (destination, outcome) -> metrics and stats
        self.now = now
        self.wait = wait  # sleeps up to n seconds; True when the notifier is stopping
        self.pause_at = pause_at
        self.stop = stop
        self.bucket = TokenBucket(
            settings.rate_per_s, settings.rate_burst, lambda: now().timestamp()
        )

    def _mongo(self, what: str, action: Callable[[], Any]) -> Any:
        """`action()`, retried while MongoDB is unreachable; Stopped if stopping meanwhile."""
        delay, first, last_log = 0.2, None, 0.0
        while True:
            try:
                result = action()
            except MongoUnavailable as exc:
                t = self.now().timestamp()
                if first is None:
                    first = last_log = t
                    log.warning("MongoDB unavailable during %s, retrying: %s", what, exc)
                elif t - last_log >= REMINDER_EVERY_S:
                    last_log = t
                    log.warning("MongoDB still unavailable after %.0f s (%s)", t - first, what)
                if self.wait(delay):
                    raise Stopped from exc
                delay = min(delay * 2, MONGO_RETRY_MAX_S)
                continue
            if first is not None:
                log.info("MongoDB back; %s done", what)
            return result

    def _pause(self, point: str, cid: str) -> None:
        """The test hook: announce the pause and wait until killed (or stopped)."""
        if self.pause_at != point:
            return
        log.warning("test hook: paused %s %s", point, cid)
        if self.stop is not None:
            self.stop.wait(600)

    def deliver(self, alert: dict[str, Any], note: Notification) -> Result:
        """Claim, send and settle the notification of `alert` to this destination."""
        name = self.dest.name
        try:
            acq = self._acquire(alert)
        except Stopped:
            return "stopped"
        if acq.step is Step.SKIP:
            self.count(name, "duplicate_skipped")
            log.info("alert %s to %s: already %s, skipped", alert["alert_id"], name, acq.status)
            return "duplicate_skipped"
        if acq.taken_over:
            log.warning(
                "alert %s to %s: claim left unsettled by a stopped notifier (%d attempts); "
                "sending it now",
                alert["alert_id"],
                name,
                acq.attempts,
            )
        try:
            return self._send(alert, note, acq)
        except Stopped:
            with contextlib.suppress(Stopped):  # if not released, the lease lapses by itself
                self._mongo("claim release", lambda: self.book.release(acq.claim_id))
            return "stopped"

    def _acquire(self, alert: dict[str, Any]) -> Acquired:
        while True:
            acq = self._mongo("claim", lambda: self.book.acquire(alert, self.dest.name))
            if acq.step is not Step.WAIT:
                return acq
            # another notifier holds a live lease: it may settle it, or die and let it lapse
            if self.wait(min(max(acq.wait_s, 0.05), 1.0)):
                raise Stopped

    def _send(self, alert: dict[str, Any], note: Notification, acq: Acquired) -> Result:
        name, cid, alert_id = self.dest.name, acq.claim_id, alert["alert_id"]
        self._pause("after_claim", cid)
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        attempts = acq.attempts
        started = acq.first_claimed_at or self.now()
        deadline = started + dt.timedelta(milliseconds=self.s.retry_total_ms)
        initial_s, max_s = self.s.retry_initial_ms / 1000, self.s.retry_max_ms / 1000
        while True:
            delay = self.bucket.reserve()
            if delay > 0:  # rate-limited: keep the lease while waiting for a token
                self._mongo("lease renewal", lambda d=delay, n=attempts: self.book.renew(cid, n, d))
                if self.wait(delay):
                    raise Stopped
            attempts += 1
            outcome = self.dest.send(note, alert)
            if isinstance(outcome, Sent):
                self._pause("after_send", cid)
                self._mongo(
                    "marking sent",
                    lambda n=attempts, o=outcome: self.book.mark_sent(cid, n, o.detail),
                )
                self.count(name, "sent")
                log.info("alert %s sent to %s (attempt %d)", alert_id, name, attempts)
                return "sent"
            if isinstance(outcome, Permanent):
                return self._dead_letter(alert, cid, outcome.reason, attempts, outcome.reason)
            assert isinstance(outcome, Transient)
            wait_s = next_wait_s(attempts, outcome, initial_s, max_s)
            if self.now() + dt.timedelta(seconds=wait_s) > deadline:
                return self._dead_letter(alert, cid, RETRIES_EXHAUSTED, attempts, outcome.reason)
            self.count(name, "retried")
            log.warning(
                "alert %s to %s: %s, attempt %d; retrying in %.1f s",
                alert_id,
                name,
                outcome.reason,
                attempts,
                wait_s,
            )
            self._mongo(
                "lease renewal",
                lambda n=attempts, w=wait_s, r=outcome.reason: self.book.renew(cid, n, w, r),
            )
            if self.wait(wait_s):
                raise Stopped

    def _dead_letter(
        self, alert: dict[str, Any], cid: str, reason: str, attempts: int, last_error: str
    ) -> Result:
        name = self.dest.name
        self._mongo(
            "dead letter",
            lambda: self.book.dead_letter(cid, alert, name, reason, attempts, last_error),
        )
        self.count(name, "dead_lettered")
        log.error(
            "alert %s to %s dead-lettered after %d attempts: %s (last error: %s)",
            alert["alert_id"],
            name,
            attempts,
            reason,
            last_error,
        )
        return "dead_lettered"
