"""In-memory stand-ins for the notifier's unit tests: a fake clock, a claim book with the same
transitions as notify.claims.ClaimBook, a scripted destination."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from notify.claims import CLAIMED, DEAD_LETTERED, SENT, Acquired, Step, claim_id, next_step
from notify.messages import Notification
from notify.retry import Outcome, Sent

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


class Clock:
    """Time that moves only when someone waits; `waits` records every wait."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.t = start
        self.waits: list[float] = []
        self.stop_after: int | None = None  # the n-th wait reports "stopping"

    def now(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.advance(seconds)
        return self.stop_after is not None and len(self.waits) >= self.stop_after

    def elapsed(self) -> float:
        return (self.t - T0).total_seconds()


class FakeBook:
    """notify.claims.ClaimBook over a dict, for one `owner`; several books may share `claims`."""

    def __init__(
        self, owner: str, clock: Clock, lease_s: float = 30.0, claims: dict | None = None
    ) -> None:
        self.owner, self.clock, self.lease_s = owner, clock, lease_s
        self.claims: dict[str, dict[str, Any]] = {} if claims is None else claims
        self.dead_letters: dict[str, dict[str, Any]] = {}

    def _lease(self, extra_s: float = 0.0) -> dt.datetime:
        return self.clock.now() + dt.timedelta(seconds=self.lease_s + extra_s)

    def acquire(self, alert: dict[str, Any], destination: str) -> Acquired:
        cid = claim_id(alert["alert_id"], destination)
        now = self.clock.now()
        stored = self.claims.get(cid)
        if stored is None:
            self.claims[cid] = {
                "_id": cid, "status": CLAIMED, "owner": self.owner, "lease_until": self._lease(),
                "claimed_at": now, "attempts": 0, "alert": alert,
            }  # fmt: skip
            return Acquired(Step.SEND, cid, first_claimed_at=now)
        step, wait_s = next_step(stored, self.owner, now)
        if step is Step.SKIP:
            return Acquired(step, cid, status=stored["status"])
        if step is Step.WAIT:
            return Acquired(step, cid, wait_s=wait_s)
        taken_over = stored["owner"] != self.owner
        stored.update(owner=self.owner, lease_until=self._lease())
        return Acquired(
            Step.SEND, cid, attempts=stored["attempts"], first_claimed_at=stored["claimed_at"],
            taken_over=taken_over,
        )  # fmt: skip

    def renew(self, cid: str, attempts: int, extra_s: float = 0.0, error: str | None = None):
        c = self.claims[cid]
        if c["owner"] == self.owner:
            c.update(lease_until=self._lease(extra_s), attempts=attempts)
            if error is not None:
                c["last_error"] = error

    def release(self, cid: str) -> None:
        c = self.claims[cid]
        if c["owner"] == self.owner and c["status"] == CLAIMED:
            c["lease_until"] = self.clock.now()

    def mark_sent(self, cid: str, attempts: int, detail: str) -> None:
        self.claims[cid].update(
            status=SENT, sent_at=self.clock.now(), attempts=attempts, detail=detail
        )

    def dead_letter(self, cid, alert, destination, reason, attempts, last_error=None) -> None:
        self.dead_letters[cid] = {"reason": reason, "last_error": last_error, "attempts": attempts}
        self.claims[cid].update(status=DEAD_LETTERED, reason=reason, attempts=attempts)


class Scripted:
    """A destination answering from a script of outcomes (then Sent); records each send."""

    kind = "fake"

    def __init__(self, name: str, outcomes: Iterable[Outcome] = (), clock: Clock | None = None):
        self.name = name
        self.script = list(outcomes)
        self.clock = clock
        self.sends: list[tuple[str, dt.datetime | None]] = []

    def describe(self) -> str:
        return f"fake {self.name}"

    def send(self, note: Notification, alert: dict[str, Any]) -> Outcome:
        self.sends.append((alert["alert_id"], self.clock.now() if self.clock else None))
        return self.script.pop(0) if self.script else Sent("ok")


def alert(i: int = 1, **over: Any) -> dict[str, Any]:
    """A contract-shaped CRITICAL card alert."""
    doc = {
        "alert_id": f"{i:032x}",
        "rule": "CARD_TESTING",
        "severity": "CRITICAL",
        "entity_type": "card",
        "entity_id": "c0ffee" * 5 + "aa",
        "user_id": "u_102",
        "card_last4": "1234",
        "card_token": "c0ffee" * 5 + "aa",
        "transaction_ids": ["t1", "t2", "t3"],
        "amount": 250.0,
        "score": None,
        "window_start": None,
        "window_end": None,
        "event_time": "2026-11-21T22:40:18.123Z",
        "detected_at": "2026-11-21T22:40:19.000Z",
        "details": {"probes": 3, "charge_amount": 250.0, "probe_under": 2.0, "charge_over": 200.0},
        "rule_version": 0,
    }
    doc.update(over)
    return doc
