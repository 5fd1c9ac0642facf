"""Claim state transitions (notify.claims.next_step) on a fake clock."""

from __future__ import annotations

import datetime as dt

import pytest

from notify.claims import CLAIMED, DEAD_LETTERED, SENT, Step, aware, claim_id, next_step
from tests.notify.fakes import T0

LEASE = dt.timedelta(seconds=30)


def claim(status: str = CLAIMED, owner: str = "a", lease_until=T0 + LEASE) -> dict:
    return {"status": status, "owner": owner, "lease_until": lease_until}


@pytest.mark.parametrize("status", [SENT, DEAD_LETTERED])
def test_a_settled_claim_is_skipped_whoever_asks(status) -> None:
    assert next_step(claim(status), "a", T0) == (Step.SKIP, 0.0)
    assert next_step(claim(status, lease_until=T0 - LEASE), "b", T0) == (Step.SKIP, 0.0)


def test_the_owner_resumes_its_own_claim() -> None:
    assert next_step(claim(owner="a"), "a", T0) == (Step.SEND, 0.0)


def test_another_owner_with_a_live_lease_is_waited_for_until_the_lease_lapses() -> None:
    assert next_step(claim(owner="a"), "b", T0) == (Step.WAIT, 30.0)
    assert next_step(claim(owner="a"), "b", T0 + dt.timedelta(seconds=29)) == (Step.WAIT, 1.0)
    # the owner died: at the end of its lease the claim is taken over and sent
    assert next_step(claim(owner="a"), "b", T0 + LEASE) == (Step.SEND, 0.0)


def test_a_lease_read_back_naive_from_mongodb_counts_as_utc() -> None:
    naive = (T0 + LEASE).replace(tzinfo=None)
    assert aware(naive) == T0 + LEASE
    assert next_step(claim(owner="a", lease_until=naive), "b", T0)[0] is Step.WAIT
    assert next_step(claim(owner="a", lease_until=None), "b", T0)[0] is Step.SEND


def test_claim_id_keys_on_alert_id_and_destination_only() -> None:
    assert claim_id("9f86", "oncall") == "9f86|oncall"
    assert claim_id("9f86", "email") != claim_id("9f86", "oncall")
