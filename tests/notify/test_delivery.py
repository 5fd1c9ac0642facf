"""Claim, send, retry, settle: notify.delivery.Deliverer on a fake clock and an in-memory book."""

from __future__ import annotations

from itertools import pairwise

from config import load_settings
from notify.claims import CLAIMED, DEAD_LETTERED, SENT
from notify.delivery import Deliverer
from notify.messages import render
from notify.retry import Permanent, Transient
from tests.notify.fakes import Clock, FakeBook, Scripted, alert

SETTINGS = load_settings(
    notify={"retry_initial_ms": 500, "retry_max_ms": 4000, "retry_total_ms": 20_000,
            "rate_per_s": 1.0, "rate_burst": 2, "claim_lease_ms": 30_000}
).notify  # fmt: skip


class Counts(dict):
    def __call__(self, destination: str, outcome: str) -> None:
        self[(destination, outcome)] = self.get((destination, outcome), 0) + 1


def deliverer(dest, book, clock, counts=None) -> Deliverer:
    return Deliverer(
        dest, book, SETTINGS, count=counts if counts is not None else Counts(),
        now=clock.now, wait=clock.wait,
    )  # fmt: skip


def deliver(d: Deliverer, a: dict) -> str:
    return d.deliver(a, render(a, SETTINGS))


def test_sent_once_then_every_copy_is_a_duplicate() -> None:
    clock, counts = Clock(), Counts()
    dest, book = Scripted("hook", clock=clock), FakeBook("me", clock)
    d = deliverer(dest, book, clock, counts)
    a = alert(1)
    assert deliver(d, a) == "sent"
    again = alert(1, detected_at="2026-11-21T23:00:00.000Z")  # re-sent by the job
    assert deliver(d, again) == "duplicate_skipped"
    assert len(dest.sends) == 1
    claim = book.claims[f"{a['alert_id']}|hook"]
    assert (claim["status"], claim["attempts"]) == (SENT, 1)
    assert counts == {("hook", "sent"): 1, ("hook", "duplicate_skipped"): 1}


def test_500_twice_then_success_backs_off_exponentially() -> None:
    clock, counts = Clock(), Counts()
    dest = Scripted("hook", [Transient("http_500"), Transient("http_500")], clock)
    book = FakeBook("me", clock)
    assert deliver(deliverer(dest, book, clock, counts), alert(2)) == "sent"
    assert len(dest.sends) == 3
    assert clock.waits == [0.5, 1.0]
    assert counts == {("hook", "retried"): 2, ("hook", "sent"): 1}
    assert book.claims[f"{alert(2)['alert_id']}|hook"]["attempts"] == 3


def test_429_waits_what_retry_after_asks() -> None:
    clock = Clock()
    dest = Scripted("hook", [Transient("http_429", retry_after_s=3.0)], clock)
    assert deliver(deliverer(dest, FakeBook("me", clock), clock), alert(3)) == "sent"
    assert clock.waits == [3.0]
    assert (dest.sends[1][1] - dest.sends[0][1]).total_seconds() == 3.0


def test_a_permanent_failure_is_dead_lettered_at_once() -> None:
    clock, counts = Clock(), Counts()
    dest = Scripted("hook", [Permanent("http_404:no_service")], clock)
    book = FakeBook("me", clock)
    a = alert(4)
    assert deliver(deliverer(dest, book, clock, counts), a) == "dead_lettered"
    assert len(dest.sends) == 1 and clock.waits == []
    cid = f"{a['alert_id']}|hook"
    assert book.dead_letters[cid]["reason"] == "http_404:no_service"
    assert book.claims[cid]["status"] == DEAD_LETTERED
    # and it is never tried again
    assert deliver(deliverer(dest, book, clock, counts), a) == "duplicate_skipped"
    assert len(dest.sends) == 1


def test_retries_stop_after_the_total_retry_time_as_retries_exhausted() -> None:
    clock = Clock()
    dest = Scripted("hook", [Transient("http_503")] * 100, clock)
    book = FakeBook("me", clock)
    a = alert(5)
    assert deliver(deliverer(dest, book, clock), a) == "dead_lettered"
    # 0.5 + 1 + 2 + 4 + 4 + 4 + 4 = 19.5 s of waits; one more 4 s would pass the 20 s cap
    assert clock.waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    letter = book.dead_letters[f"{a['alert_id']}|hook"]
    assert letter == {"reason": "retries_exhausted", "last_error": "http_503", "attempts": 8}


def test_a_retry_after_beyond_the_total_retry_time_dead_letters_now() -> None:
    clock = Clock()
    dest = Scripted("hook", [Transient("http_429", retry_after_s=3600)], clock)
    book = FakeBook("me", clock)
    assert deliver(deliverer(dest, book, clock), alert(6)) == "dead_lettered"
    assert clock.waits == []


def test_the_rate_limit_spaces_sends_per_destination() -> None:
    clock = Clock()
    dest = Scripted("hook", clock=clock)
    d = deliverer(dest, FakeBook("me", clock), clock)
    for i in range(5):
        assert deliver(d, alert(10 + i)) == "sent"
    gaps = [(b[1] - a[1]).total_seconds() for a, b in pairwise(dest.sends)]
    assert gaps == [0.0, 1.0, 1.0, 1.0]  # a burst of 2, then 1 a second


def test_a_claim_left_by_a_dead_notifier_is_taken_over_when_its_lease_lapses() -> None:
    clock, shared = Clock(), {}
    a = alert(20)
    dead = FakeBook("dead", clock, claims=shared)
    dead.acquire(a, "hook")  # claimed, then the process died before sending
    dest = Scripted("hook", clock=clock)
    d = deliverer(dest, FakeBook("next", clock, claims=shared), clock)
    assert deliver(d, a) == "sent"
    assert len(dest.sends) == 1
    assert dest.sends[0][1] >= dead.claims[f"{a['alert_id']}|hook"]["claimed_at"]
    assert clock.elapsed() >= 30.0  # it waited for the lease, polling at most every second
    assert max(clock.waits) <= 1.0
    assert shared[f"{a['alert_id']}|hook"]["owner"] == "next"


def test_the_retry_budget_counts_from_the_first_claim_across_takeovers() -> None:
    clock, shared = Clock(), {}
    a = alert(21)
    FakeBook("dead", clock, claims=shared).acquire(a, "hook")
    clock.advance(60)  # the dead notifier's lease lapsed long ago
    dest = Scripted("hook", [Transient("http_500")] * 100, clock)
    book = FakeBook("next", clock, claims=shared)
    assert deliver(deliverer(dest, book, clock), a) == "dead_lettered"
    assert len(dest.sends) == 1  # 60 s already spent of a 20 s budget


def test_stopping_while_backing_off_releases_the_claim_unsettled() -> None:
    clock = Clock()
    clock.stop_after = 1  # the first wait reports that the notifier is stopping
    dest = Scripted("hook", [Transient("http_500")], clock)
    book = FakeBook("me", clock)
    a = alert(22)
    assert deliver(deliverer(dest, book, clock), a) == "stopped"
    claim = book.claims[f"{a['alert_id']}|hook"]
    assert claim["status"] == CLAIMED and claim["lease_until"] <= clock.now()
    # the next notifier takes it over at once and sends it
    clock.stop_after = None
    nxt = Scripted("hook", clock=clock)
    assert deliver(deliverer(nxt, FakeBook("next", clock, claims=book.claims), clock), a) == "sent"
