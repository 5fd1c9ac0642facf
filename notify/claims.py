"""The once-only record: one claim per alert and destination in MongoDB (`notify_claims`).

A claim's `_id` is `<alert_id>|<destination>`; only `alert_id` counts, so the job's re-sent
copy of an alert (a new `detected_at`) or a resubmitted job's finds the same claim. FerretDB has
no transactions and no TTL indexes, so everything is plain inserts and updates of one document:

    (none) --insert--> claimed --send ok--> sent
                          |  \\--permanent failure, or retries exhausted--> dead_lettered
                          \\--owner's lease lapsed (it died)--> claimed by the next notifier

- Claiming is `insert_one`: a duplicate-key error means another notifier (or this one, earlier)
  claimed it; `next_step` then decides from the stored claim: settled (sent, dead-lettered) is
  skipped; a claim whose owner stopped renewing its lease (`lease_until` passed) is taken over
  and sent again; a live owner's is waited for.
- The owner renews its lease before each attempt and each back-off wait, and on a clean stop
  releases it (lease ends now), so a restart takes over at once; after a crash, after at most
  `notify.claim_lease_ms`.
- A claim holds the alert, so claims left `claimed` can be finished without Kafka (`stale`).

One duplicate is possible, by design: a notifier that dies after the destination accepted the
message and before `mark_sent` leaves a claim the next one sends again (docs/notifications.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pymongo import ASCENDING, ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from fraudctl.mongo import raise_if_unavailable

CLAIMED, SENT, DEAD_LETTERED = "claimed", "sent", "dead_lettered"
SETTLED = frozenset({SENT, DEAD_LETTERED})


class Step(Enum):
    """What to do about a notification, given its claim."""

    SEND = "send"  # ours (new, resumed or taken over): send it
    SKIP = "skip"  # settled already: a duplicate
    WAIT = "wait"  # another live notifier is on it


def claim_id(alert_id: str, destination: str) -> str:
    return f"{alert_id}|{destination}"


def aware(value: Any) -> dt.datetime | None:
    """A datetime read back from MongoDB (naive UTC by default) as an aware one."""
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def next_step(claim: dict[str, Any], owner: str, now: dt.datetime) -> tuple[Step, float]:
    """Pure: (what to do, seconds until the holder's lease lapses when WAIT) for an existing
    claim, as seen by notifier `owner` at `now`."""
    status = claim.get("status")
    if status in SETTLED:
        return Step.SKIP, 0.0
    if claim.get("owner") == owner:
        return Step.SEND, 0.0
    lease_until = aware(claim.get("lease_until"))
    if lease_until is None or lease_until <= now:
        return Step.SEND, 0.0
    return Step.WAIT, (lease_until - now).total_seconds()


@dataclass(frozen=True)
class Acquired:
    """What `ClaimBook.acquire` found: the step, and the claim's history when it is ours."""

    step: Step
    claim_id: str
    attempts: int = 0  # attempts made before (by a notifier that died), when taken over
    first_claimed_at: dt.datetime | None = None
    wait_s: float = 0.0
    taken_over: bool = False
    status: str | None = None  # a settled claim's status


class ClaimBook:
    """Claims and dead letters of one notifier process (`owner`) in MongoDB.

    Every method raises fraudctl.mongo.MongoUnavailable when MongoDB is unreachable (the
    caller retries) and lets other MongoDB errors through.
    """

    def __init__(
        self,
        claims: Collection,
        dead_letters: Collection,
        owner: str,
        lease_s: float,
        now: Callable[[], dt.datetime],
    ) -> None:
        self.claims = claims
        self.dead_letters = dead_letters
        self.owner = owner
        self.lease_s = lease_s
        self.now = now

    def _lease(self, extra_s: float = 0.0) -> dt.datetime:
        return self.now() + dt.timedelta(seconds=self.lease_s + extra_s)

    def ensure_indexes(self) -> None:
        with _mongo():
            self.claims.create_index([("status", ASCENDING)])
            self.dead_letters.create_index([("reason", ASCENDING)])

    def acquire(self, alert: dict[str, Any], destination: str) -> Acquired:
        """Claim the notification of `alert` to `destination`, or say why not."""
        cid = claim_id(alert["alert_id"], destination)
        now = self.now()
        doc = {
            "_id": cid,
            "alert_id": alert["alert_id"],
            "destination": destination,
            "status": CLAIMED,
            "owner": self.owner,
            "lease_until": self._lease(),
            "claimed_at": now,
            "attempts": 0,
            "alert": alert,
        }
        with _mongo():
            try:
                self.claims.insert_one(doc)
                return Acquired(Step.SEND, cid, first_claimed_at=now)
            except DuplicateKeyError:
                pass
            stored = self.claims.find_one({"_id": cid})
            if stored is None:  # deleted meanwhile (by hand): claim it again
                return self.acquire(alert, destination)
            step, wait_s = next_step(stored, self.owner, now)
            if step is Step.SKIP:
                return Acquired(step, cid, status=stored.get("status"))
            if step is Step.WAIT:
                return Acquired(step, cid, wait_s=wait_s)
            taken_over = stored.get("owner") != self.owner
            if taken_over:
                # only if nobody else took it over first (same owner and lease as read)
                res = self.claims.update_one(
                    {"_id": cid, "status": CLAIMED, "owner": stored.get("owner")},
                    {
                        "$set": {"owner": self.owner, "lease_until": self._lease()},
                        "$inc": {"takeovers": 1},
                    },
                )
                if res.matched_count == 0:  # lost the race: look again
                    return self.acquire(alert, destination)
            return Acquired(
                Step.SEND,
                cid,
                attempts=int(stored.get("attempts") or 0),
                first_claimed_at=aware(stored.get("claimed_at")) or now,
                taken_over=taken_over,
            )

    def renew(
        self, cid: str, attempts: int, extra_s: float = 0.0, error: str | None = None
    ) -> None:
        """Extend this owner's lease by `extra_s` (a back-off wait) plus the lease; record the
        attempts so far and the last error."""
        update: dict[str, Any] = {"lease_until": self._lease(extra_s), "attempts": attempts}
        if error is not None:
            update["last_error"] = error
        with _mongo():
            self.claims.update_one({"_id": cid, "owner": self.owner}, {"$set": update})

    def release(self, cid: str) -> None:
        """End this owner's lease now (a clean stop), so the next notifier takes over at once."""
        with _mongo():
            self.claims.update_one(
                {"_id": cid, "owner": self.owner, "status": CLAIMED},
                {"$set": {"lease_until": self.now()}},
            )

    def mark_sent(self, cid: str, attempts: int, detail: str) -> None:
        now = self.now()
        with _mongo():
            self.claims.update_one(
                {"_id": cid},
                {
                    "$set": {
                        "status": SENT,
                        "sent_at": now,
                        "settled_at": now,
                        "attempts": attempts,
                        "detail": detail,
                        "owner": self.owner,
                    }
                },
            )

    def dead_letter(
        self, cid: str, alert: dict[str, Any], destination: str, reason: str, attempts: int,
        last_error: str | None = None,
    ) -> None:  # fmt: skip
        """Record a permanent failure: the dead letter first (idempotent), then the claim."""
        now = self.now()
        letter = {
            "_id": cid,
            "alert_id": alert["alert_id"],
            "destination": destination,
            "reason": reason,
            "last_error": last_error or reason,
            "attempts": attempts,
            "dead_lettered_at": now,
            "alert": alert,
        }
        with _mongo():
            self.dead_letters.bulk_write([ReplaceOne({"_id": cid}, letter, upsert=True)])
            self.claims.update_one(
                {"_id": cid},
                {
                    "$set": {
                        "status": DEAD_LETTERED,
                        "settled_at": now,
                        "attempts": attempts,
                        "reason": reason,
                        "last_error": last_error or reason,
                        "owner": self.owner,
                    }
                },
            )

    def stale(self, destinations: Iterable[str]) -> list[dict[str, Any]]:
        """Claims of `destinations` still `claimed` whose lease has lapsed (their notifier died
        and their Kafka record may never come again), oldest first."""
        with _mongo():
            found = self.claims.find(
                {"status": CLAIMED, "destination": {"$in": list(destinations)}}
            )
            now = self.now()
            out = [c for c in found if (aware(c.get("lease_until")) or now) <= now]
        return sorted(out, key=lambda c: aware(c.get("claimed_at")) or now)


@contextmanager
def _mongo() -> Iterator[None]:
    """A PyMongoError that means "MongoDB is unreachable" becomes MongoUnavailable."""
    try:
        yield
    except DuplicateKeyError:
        raise
    except PyMongoError as exc:
        raise_if_unavailable(exc)
        raise
