"""Labelled legit look-alikes: purchases of the card's own holder that share one or two traits
with the behavioural fraud of scenarios.py (RISK_SCORE), so a model that flags them has learnt
the trait, not the fraud. Their truth records are `kind: "lookalike"` (legit); `fraudctl
evaluate` reports how many RISK_SCORE flagged. Built like the scenarios (a `Plan` of one event).

| look-alike | looks like | shape |
|---|---|---|
| travel | account_takeover | far city after a journey; usual device, category, amount; pos |
| habitual_big_online | account_drain | a big online spender's 3-8 times usual, online purchase |
| new_phone | account_takeover | a new device; usual city, category, amount, channel |

- travel: the holder travels to a city 400-1,200 km away, a journey's time after the card's last
  purchase (as account_takeover), buys in person on the usual device in a category the card
  bought before at a usual amount (0.5-2 times its usual), and stays there;
- habitual_big_online: a big online spender (population.py) makes one of their big online
  purchases (at most 480.00) in their own big-purchase category, bought before, on the usual
  device in the usual city;
- new_phone: a device never seen, otherwise a usual purchase (city, a category bought before,
  amount, the category's channel); the phone then replaces the user's first device.

Like the scenarios, each takes only a card with at least `scenarios.MIN_HISTORY` purchases and
trips no rule: amounts stay in the normal range [3.00, 480.00], the card has rested since its
last purchase (2.5 min in the pool, a journey's time before travel: at most 450 km/h, at least
90 min) and rests 10 min after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from producer.places import distance_km
from producer.population import (
    CATEGORIES,
    CATEGORY_NAMES,
    MAX_NORMAL_AMOUNT,
    MIN_AMOUNT,
    User,
    normal_amount,
)
from producer.scenarios import (
    MAX_JOURNEY_MS,
    Plan,
    ScenarioSpec,
    after_journey,
    away_cities,
    finish,
    has_history,
)

if TYPE_CHECKING:
    from producer.generator import TransactionGenerator

USUAL_RATIO = (0.5, 2.0)  # a usual amount: this many times the card's usual, at most


def _usual_categories(gen: TransactionGenerator, user: User, pos_only: bool) -> list[str]:
    """Categories the user buys (non-zero weight) and the card has bought before."""
    return [
        c
        for c in CATEGORY_NAMES
        if c not in user.never_buys
        and gen.has_bought(user, c)
        and (not pos_only or CATEGORIES[c][2] == "pos")
    ]


def _usual_purchase(
    gen: TransactionGenerator, user: User, t_ms: int, pos_only: bool
) -> tuple[str, float]:
    """A category the card bought before (by the user's taste at `t_ms` when a few draws find
    one) and an amount of it, within USUAL_RATIO of the card's usual amount."""
    known = _usual_categories(gen, user, pos_only)
    cat = next(
        (c for _ in range(8) if (c := gen.pick_category(user, t_ms)) in known),
        None,
    ) or gen.rng.choice(known)
    usual = gen.usual_amount(user)
    assert usual is not None
    lo, hi = usual * USUAL_RATIO[0], usual * USUAL_RATIO[1]
    amount = min(max(normal_amount(gen.rng, cat), lo), hi)
    return cat, round(min(MAX_NORMAL_AMOUNT, max(MIN_AMOUNT, amount)), 2)


def _plan(gen: TransactionGenerator, user: User) -> Plan:
    return Plan("", "card", user, None, scenario_id=gen.new_lookalike_id(), kind="lookalike")


def travel(gen: TransactionGenerator, now: int) -> Plan | None:
    def candidate(u: User) -> bool:
        return (
            has_history(gen, u)
            and bool(away_cities(gen, u))
            and bool(_usual_categories(gen, u, True))
        )

    user = gen.take_idle_user(now, 0, accept=candidate)
    if user is None:
        return None
    rng = gen.rng
    plan = _plan(gen, user)
    city = rng.choice(away_cities(gen, user))
    t = after_journey(gen, user, now, distance_km(gen.cur_city[user.index], city))
    cat, amount = _usual_purchase(gen, user, t, pos_only=True)
    device = gen.usual_device(user)
    plan.add(
        t,
        user,
        gen.txn(t, user, category=cat, amount=amount, city=city, device=device, channel="pos"),
    )
    # the holder stays: normal traffic goes home only after a gap a car could cover
    finish(gen, user, t, city)
    return plan


def habitual_big_online(gen: TransactionGenerator, now: int) -> Plan | None:
    def candidate(u: User) -> bool:
        big = u.big_online_category
        return big is not None and has_history(gen, u) and gen.has_bought(u, big)

    user = gen.take_idle_user(now, 0, accept=candidate, among=gen.big_online_users)
    if user is None:
        return None
    plan = _plan(gen, user)
    city = gen.cur_city[user.index]
    assert user.big_online_category is not None
    amount = gen.big_online_amount(user)
    device = gen.usual_device(user)
    plan.add(
        now,
        user,
        gen.txn(
            now,
            user,
            category=user.big_online_category,
            amount=amount,
            city=city,
            device=device,
            channel="online",
        ),
    )
    finish(gen, user, now, city)
    return plan


def new_phone(gen: TransactionGenerator, now: int) -> Plan | None:
    def candidate(u: User) -> bool:
        return has_history(gen, u) and bool(_usual_categories(gen, u, False))

    user = gen.take_idle_user(now, 0, accept=candidate)
    if user is None:
        return None
    plan = _plan(gen, user)
    city = gen.cur_city[user.index]
    cat, amount = _usual_purchase(gen, user, now, pos_only=False)
    device = gen.new_device_id()
    plan.add(now, user, gen.txn(now, user, category=cat, amount=amount, city=city, device=device))
    gen.phone[user.index] = device
    finish(gen, user, now, city)
    return plan


LOOKALIKES: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec("travel", 1.0, MAX_JOURNEY_MS, travel),
        ScenarioSpec("habitual_big_online", 1.0, 0, habitual_big_online),
        ScenarioSpec("new_phone", 1.0, 0, new_phone),
    )
}
LOOKALIKE_NAMES = tuple(LOOKALIKES)
