"""Labelled fraud scenarios. Each builder takes users out of the generator's pool, plans all its
transactions at once and returns a `Plan`; the generator emits them at their event times.
(producer/lookalikes.py builds the legit look-alikes the same way.)

Shapes (the docs/contract.md defaults with margin; every scenario trips its own rule and no other):

| scenario | rule | shape |
|---|---|---|
| velocity_burst | VELOCITY | 5-7 purchases on one card, 8-20 s apart (within 2 min), one city |
| device_farm | DEVICE_SHARING | 5-7 different cards on one new device, 8-20 s apart |
| geo_hop | GEO_HOP | two purchases 7-9 min apart in cities 30-80 km apart (< 700 km/h) |
| impossible_travel | IMPOSSIBLE_TRAVEL | two purchases 11-15 min apart, > 1,600 km apart |
| card_testing | CARD_TESTING | 3-4 probes of 0.50-1.99, then a 220-480 charge, 110-140 s apart |
| high_value | HIGH_VALUE | one purchase of 650-2,500 |
| account_takeover | RISK_SCORE | 1 purchase (30 %: 2, 20-45 min apart), new device, online, far |
| account_drain | RISK_SCORE | 2-3 purchases 20-60 min apart, home city, usual device |

Impossible travel implies more than 6,000 km/h and stays out of GEO_HOP's 10 min. Card-testing
steps are spaced so that any 5 min hold at most 3 of them (no VELOCITY) and all fit in 10 min.

The RISK_SCORE scenarios are behavioural: no threshold rule catches them, only a model of the
card's own history (the behaviour features: amount / usual amount, first-seen device, category
and city, km from usual places, minutes since the previous purchase, counts over 1 h / 24 h):
- every purchase is in a category the card never bought (the population gives every user
  categories of zero weight), 4-10 (account_takeover) or 5-10 (account_drain) times the card's
  usual amount, and at most 480.00 (HIGH_VALUE: over 500.00). The usual amount is the geometric
  mean of the card's purchases so far in the stream, as the feature `amount_ratio` has it;
- account_takeover is in a city 400-1,200 km from the card's current and home city, at least
  90 min and at least the time a 450 km/h journey takes (half IMPOSSIBLE_TRAVEL's 900 km/h)
  after the card's last purchase, so hours past GEO_HOP's 10 min. The holder, still at home,
  buys again only after as long (no IMPOSSIBLE_TRAVEL on the way back either); the card is
  held out of normal traffic until then;
- they take only cards with at least `MIN_HISTORY` purchases (early in a run there are none and
  they are skipped); the card's earlier purchases are at least 3.00, so no CARD_TESTING probes
  precede their amounts over 200.00, and no 5 min hold more than one of them (VELOCITY).

A scenario takes cards from the generator's pool, so each has rested at least 2 min since its
last purchase (any 4 consecutive purchases then span more than 5 min unless the scenario packs
them), and it rests 10 min after the scenario, so normal traffic never merges with a scenario into
a different rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config.producer import SCENARIO_RULES
from fraudctl.times import iso_ms
from producer.places import (
    AWAY_MAX_KM,
    AWAY_MIN_KM,
    AWAY_PARTNERS,
    FAR_PARTNERS,
    HOP_PARTNERS,
    distance_km,
)
from producer.population import MAX_NORMAL_AMOUNT, User, normal_amount
from udfs.card_token import card_last4, card_token

if TYPE_CHECKING:
    from producer.generator import TransactionGenerator

IDLE_BEFORE_MS = 0  # the pool already guarantees MIN_CARD_GAP_MS
REST_AFTER_MS = 10 * 60_000
MINUTE = 60_000
# impossible travel: just over GEO_HOP's 10 min, so only IMPOSSIBLE_TRAVEL fires; with
# > 1,500 km that is still more than 6,000 km/h
IMPOSSIBLE_GAP_MS = (11 * MINUTE, 15 * MINUTE)
# behavioural scenarios and look-alikes judge a card by its history: only cards with this many
# purchases before
MIN_HISTORY = 3
# a journey to a city AWAY_PARTNERS away: at most half IMPOSSIBLE_TRAVEL's 900 km/h, and at
# least 90 min, plus up to an hour
JOURNEY_SPEED_KMH = 450.0
JOURNEY_MIN_MS = 90 * MINUTE
JOURNEY_EXTRA_MS = 60 * MINUTE
MAX_JOURNEY_MS = (
    int(max(JOURNEY_MIN_MS, AWAY_MAX_KM / JOURNEY_SPEED_KMH * 3.6e6)) + JOURNEY_EXTRA_MS
)
MAX_BEHAVIOUR_AMOUNT = MAX_NORMAL_AMOUNT  # 480.00: under HIGH_VALUE's 500.00
ATO_CATEGORIES = ("electronics", "travel", "retail", "online")
ATO_RATIO = (4.0, 10.0)
ATO_SECOND_SHARE = 0.3
ATO_SECOND_GAP_MS = (20 * MINUTE, 45 * MINUTE)
DRAIN_CATEGORIES = ("electronics", "retail", "travel", "online")
DRAIN_RATIO = (5.0, 10.0)
DRAIN_GAP_MS = (20 * MINUTE, 60 * MINUTE)


@dataclass
class Plan:
    """A scenario instance: its entity and its transactions (time, key, value, id)."""

    expected_rule: str
    entity_type: str  # "card" | "device"
    user: User | None
    device_id: str | None
    txns: list[tuple[int, bytes, bytes, str]] = field(default_factory=list)
    due_ms: list[int] = field(default_factory=list)  # scheduled times before jitter
    scenario_id: str = ""  # the look-alike's id for kind "lookalike"
    extra: dict[str, Any] = field(default_factory=dict)
    kind: str = "scenario"  # or "lookalike" (legit: no expected rule)

    def add(self, due_ms: int, user: User, txn: tuple[str, bytes, int]) -> None:
        txn_id, value, t_ms = txn
        self.txns.append((t_ms, user.user_id.encode(), value, txn_id))
        self.due_ms.append(due_ms)

    def truth(self, scenario_type: str, token_key: str) -> dict[str, Any]:
        """The ground-truth record (card numbers appear only as token and last 4); for a
        look-alike `lookalike_id` and `lookalike_type` instead of the scenario's three."""
        if self.entity_type == "card":
            assert self.user is not None
            entity_id = card_token(self.user.card_number, token_key)
            last4: str | None = card_last4(self.user.card_number)
            user_id: str | None = self.user.user_id
        else:
            entity_id, last4, user_id = self.device_id, None, None
        times = [t for t, *_ in self.txns]
        if self.kind == "lookalike":
            what = {"lookalike_id": self.scenario_id, "lookalike_type": scenario_type}
        else:
            what = {
                "scenario_id": self.scenario_id,
                "scenario_type": scenario_type,
                "expected_rule": self.expected_rule,
            }
        return {
            "kind": self.kind,
            **what,
            "entity_type": self.entity_type,
            "entity_id": entity_id,
            "card_last4": last4,
            "user_id": user_id,
            "transaction_ids": [txn_id for *_, txn_id in self.txns],
            "first_event_time": iso_ms(min(times)),
            "last_event_time": iso_ms(max(times)),
            "complete": True,
            **self.extra,
        }


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario (or look-alike) type: its builder, its mean number of events, and how long
    after its start its last event comes at most (no scenario starts past a known end)."""

    name: str
    mean_events: float
    max_span_ms: int  # from the first to the last event, at most
    build: Callable[[TransactionGenerator, int], Plan | None]

    @property
    def expected_rule(self) -> str:
        return SCENARIO_RULES[self.name]


def finish(gen: TransactionGenerator, user: User, last_ms: int, city: int) -> None:
    gen.last_ms[user.index] = last_ms
    gen.cur_city[user.index] = city
    gen.hold(user, last_ms + REST_AFTER_MS)


# ---- building blocks of the behavioural scenarios and the look-alikes --------------------------


def has_history(gen: TransactionGenerator, user: User) -> bool:
    return gen.history[user.index] >= MIN_HISTORY


def away_cities(gen: TransactionGenerator, user: User) -> list[int]:
    """Cities a journey of hours away from where the card is and from its home."""
    here = gen.cur_city[user.index]
    return [c for c in AWAY_PARTNERS[here] if distance_km(c, user.home) >= AWAY_MIN_KM]


def journey_ms(km: float) -> int:
    """The shortest gap between purchases `km` apart that this module allows."""
    return int(max(JOURNEY_MIN_MS, km / JOURNEY_SPEED_KMH * 3.6e6))


def after_journey(gen: TransactionGenerator, user: User, now: int, km: float) -> int:
    """When a purchase `km` from the card's last one may come: a journey's time after it
    (plus up to an hour), and not before `now`."""
    return max(now, gen.last_ms[user.index] + journey_ms(km) + gen.rng.randint(0, JOURNEY_EXTRA_MS))


def unbought(gen: TransactionGenerator, user: User, categories: tuple[str, ...]) -> list[str]:
    """The `categories` this card has never bought."""
    return [c for c in categories if not gen.has_bought(user, c)]


def fits(gen: TransactionGenerator, user: User, ratio: float) -> bool:
    """Is `ratio` times the card's usual amount at most MAX_BEHAVIOUR_AMOUNT?"""
    usual = gen.usual_amount(user)
    return usual is not None and usual * ratio <= MAX_BEHAVIOUR_AMOUNT


def ratio_amount(gen: TransactionGenerator, user: User, ratio: tuple[float, float]) -> float:
    """An amount `ratio` times the card's usual one, at most MAX_BEHAVIOUR_AMOUNT (the caller
    checked that the lower ratio fits)."""
    usual = gen.usual_amount(user)
    assert usual is not None
    hi = min(ratio[1], MAX_BEHAVIOUR_AMOUNT / usual)
    return round(min(MAX_BEHAVIOUR_AMOUNT, usual * gen.rng.uniform(ratio[0], hi)), 2)


def velocity_burst(gen: TransactionGenerator, now: int) -> Plan | None:
    user = gen.take_idle_user(now, IDLE_BEFORE_MS)
    if user is None:
        return None
    rng = gen.rng
    plan = Plan(
        SCENARIO_RULES["velocity_burst"], "card", user, None, scenario_id=gen.new_scenario_id()
    )
    city = gen.cur_city[user.index]
    t = now
    for i in range(rng.randint(5, 7)):
        if i:
            t += rng.randint(8_000, 20_000)
        cat = gen.pick_category(user, t)
        plan.add(t, user, gen.txn(t, user, category=cat, amount=normal_amount(rng, cat), city=city))
    finish(gen, user, t, city)
    return plan


def device_farm(gen: TransactionGenerator, now: int) -> Plan | None:
    rng = gen.rng
    n_users = rng.randint(5, 7)
    users: list[User] = []
    for _ in range(n_users):
        user = gen.take_idle_user(now, IDLE_BEFORE_MS)
        if user is None:
            for u in users:
                gen.hold(u, now)
            return None
        users.append(user)
    device = f"d_farm_{rng.getrandbits(32):08x}"
    plan = Plan(
        SCENARIO_RULES["device_farm"], "device", None, device, scenario_id=gen.new_scenario_id()
    )
    plan.extra["user_ids"] = [u.user_id for u in users]
    t = now
    for i, user in enumerate(users):
        if i:
            t += rng.randint(8_000, 20_000)
        city = gen.cur_city[user.index]
        amount = normal_amount(rng, "online")
        plan.add(
            t, user, gen.txn(t, user, category="online", amount=amount, city=city, device=device)
        )
        finish(gen, user, t, city)
    return plan


def geo_hop(gen: TransactionGenerator, now: int) -> Plan | None:
    user = gen.take_idle_user(
        now, IDLE_BEFORE_MS, accept=lambda u: bool(HOP_PARTNERS[gen.cur_city[u.index]])
    )
    if user is None:
        return None
    rng = gen.rng
    plan = Plan(SCENARIO_RULES["geo_hop"], "card", user, None, scenario_id=gen.new_scenario_id())
    a = gen.cur_city[user.index]
    b = rng.choice(HOP_PARTNERS[a])
    t2 = now + rng.randint(7 * MINUTE, 9 * MINUTE)
    for t, city in ((now, a), (t2, b)):
        cat = gen.pick_category(user, t)
        plan.add(t, user, gen.txn(t, user, category=cat, amount=normal_amount(rng, cat), city=city))
    finish(gen, user, t2, b)
    return plan


def impossible_travel(gen: TransactionGenerator, now: int) -> Plan | None:
    user = gen.take_idle_user(now, IDLE_BEFORE_MS)
    if user is None:
        return None
    rng = gen.rng
    plan = Plan(
        SCENARIO_RULES["impossible_travel"], "card", user, None, scenario_id=gen.new_scenario_id()
    )
    a = gen.cur_city[user.index]
    b = rng.choice(FAR_PARTNERS[a])
    t2 = now + rng.randint(*IMPOSSIBLE_GAP_MS)
    cat = gen.pick_category(user, now)
    plan.add(now, user, gen.txn(now, user, category=cat, amount=normal_amount(rng, cat), city=a))
    cat = rng.choice(("electronics", "retail", "online"))
    plan.add(t2, user, gen.txn(t2, user, category=cat, amount=normal_amount(rng, cat), city=b))
    finish(gen, user, t2, b)
    return plan


def card_testing(gen: TransactionGenerator, now: int) -> Plan | None:
    user = gen.take_idle_user(now, IDLE_BEFORE_MS)
    if user is None:
        return None
    rng = gen.rng
    plan = Plan(
        SCENARIO_RULES["card_testing"], "card", user, None, scenario_id=gen.new_scenario_id()
    )
    city = gen.cur_city[user.index]
    t = now
    for i in range(rng.randint(3, 4)):
        if i:
            t += rng.randint(110_000, 140_000)
        amount = round(rng.uniform(0.50, 1.99), 2)
        plan.add(t, user, gen.txn(t, user, category="online", amount=amount, city=city))
    t += rng.randint(110_000, 140_000)
    amount = round(rng.uniform(220.0, 480.0), 2)
    plan.add(
        t,
        user,
        gen.txn(t, user, category="electronics", amount=amount, city=city, channel="online"),
    )
    finish(gen, user, t, city)
    return plan


def high_value(gen: TransactionGenerator, now: int) -> Plan | None:
    user = gen.take_idle_user(now, IDLE_BEFORE_MS)
    if user is None:
        return None
    rng = gen.rng
    plan = Plan(SCENARIO_RULES["high_value"], "card", user, None, scenario_id=gen.new_scenario_id())
    city = gen.cur_city[user.index]
    cat = rng.choice(("electronics", "travel", "retail"))
    amount = round(rng.uniform(650.0, 2500.0), 2)
    plan.add(now, user, gen.txn(now, user, category=cat, amount=amount, city=city))
    finish(gen, user, now, city)
    return plan


def account_takeover(gen: TransactionGenerator, now: int) -> Plan | None:
    def candidate(u: User) -> bool:
        return (
            has_history(gen, u)
            and fits(gen, u, ATO_RATIO[0])
            and bool(unbought(gen, u, ATO_CATEGORIES))
            and bool(away_cities(gen, u))
        )

    user = gen.take_idle_user(now, IDLE_BEFORE_MS, accept=candidate)
    if user is None:
        return None
    rng = gen.rng
    plan = Plan(
        SCENARIO_RULES["account_takeover"], "card", user, None, scenario_id=gen.new_scenario_id()
    )
    here = gen.cur_city[user.index]
    city = rng.choice(away_cities(gen, user))
    km = distance_km(here, city)
    device = gen.new_device_id()
    t = after_journey(gen, user, now, km)
    last = t
    for i in range(2 if rng.random() < ATO_SECOND_SHARE else 1):
        categories = unbought(gen, user, ATO_CATEGORIES)
        if i:
            if not categories or not fits(gen, user, ATO_RATIO[0]):
                break
            t += rng.randint(*ATO_SECOND_GAP_MS)
        cat = rng.choice(categories)
        amount = ratio_amount(gen, user, ATO_RATIO)
        plan.add(
            t,
            user,
            gen.txn(
                t, user, category=cat, amount=amount, city=city, device=device, channel="online"
            ),
        )
        last = t
    # the holder is still where they were: their next purchase comes a journey's time later
    gen.last_ms[user.index] = last
    gen.hold(user, last + max(REST_AFTER_MS, journey_ms(km + 100.0)))
    return plan


def account_drain(gen: TransactionGenerator, now: int) -> Plan | None:
    def candidate(u: User) -> bool:
        usual = gen.usual_amount(u)
        if usual is None or not has_history(gen, u) or gen.cur_city[u.index] != u.home:
            return False
        # the second purchase must fit too, after a first one of up to 10 times the usual
        grown = usual * DRAIN_RATIO[1] ** (1 / (gen.history[u.index] + 1))
        return (
            grown * DRAIN_RATIO[0] <= MAX_BEHAVIOUR_AMOUNT
            and len(unbought(gen, u, DRAIN_CATEGORIES)) >= 2
        )

    user = gen.take_idle_user(now, IDLE_BEFORE_MS, accept=candidate)
    if user is None:
        return None
    rng = gen.rng
    plan = Plan(
        SCENARIO_RULES["account_drain"], "card", user, None, scenario_id=gen.new_scenario_id()
    )
    city = user.home
    device = gen.usual_device(user)
    t = last = now
    for i in range(rng.randint(2, 3)):
        categories = unbought(gen, user, DRAIN_CATEGORIES)
        if not categories or not fits(gen, user, DRAIN_RATIO[0]):
            break
        if i:
            t += rng.randint(*DRAIN_GAP_MS)
        cat = rng.choice(categories)
        amount = ratio_amount(gen, user, DRAIN_RATIO)
        plan.add(t, user, gen.txn(t, user, category=cat, amount=amount, city=city, device=device))
        last = t
    finish(gen, user, last, city)
    return plan


SCENARIOS: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec("velocity_burst", 6.0, 6 * 20_000, velocity_burst),
        ScenarioSpec("device_farm", 6.0, 6 * 20_000, device_farm),
        ScenarioSpec("geo_hop", 2.0, 9 * MINUTE, geo_hop),
        ScenarioSpec("impossible_travel", 2.0, IMPOSSIBLE_GAP_MS[1], impossible_travel),
        ScenarioSpec("card_testing", 4.5, 4 * 140_000, card_testing),
        ScenarioSpec("high_value", 1.0, 0, high_value),
        ScenarioSpec(
            "account_takeover", 1.3, MAX_JOURNEY_MS + ATO_SECOND_GAP_MS[1], account_takeover
        ),
        ScenarioSpec("account_drain", 2.5, 2 * DRAIN_GAP_MS[1], account_drain),
    )
}
