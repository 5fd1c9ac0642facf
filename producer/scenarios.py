"""Labelled fraud scenarios. Each builder takes users out of the generator's pool, plans all its
transactions at once and returns a `Plan`; the generator emits them at their event times.

Shapes (the docs/contract.md defaults with margin; every scenario trips its own rule and no other):

| scenario | rule | shape |
|---|---|---|
| velocity_burst | VELOCITY | 5-7 purchases on one card, 8-20 s apart (within 2 min), one city |
| device_farm | DEVICE_SHARING | 5-7 different cards on one new device, 8-20 s apart |
| geo_hop | GEO_HOP | two purchases 7-9 min apart in cities 30-80 km apart (< 700 km/h) |
| impossible_travel | IMPOSSIBLE_TRAVEL | two purchases 11-15 min apart, > 1,600 km apart |
| card_testing | CARD_TESTING | 3-4 probes of 0.50-1.99, then a 220-480 charge, 110-140 s apart |

Impossible travel implies more than 6,000 km/h and stays out of GEO_HOP's 10 min. Card-testing
steps are spaced so that any 5 min hold at most 3 of them (no VELOCITY) and all fit in 10 min.
| high_value | HIGH_VALUE | one purchase of 650-2,500 |

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
from producer.places import FAR_PARTNERS, HOP_PARTNERS
from producer.population import User, normal_amount
from udfs.card_token import card_last4, card_token

if TYPE_CHECKING:
    from producer.generator import TransactionGenerator

IDLE_BEFORE_MS = 0  # the pool already guarantees MIN_CARD_GAP_MS
REST_AFTER_MS = 10 * 60_000
MINUTE = 60_000
# impossible travel: just over GEO_HOP's 10 min, so only IMPOSSIBLE_TRAVEL fires; with
# > 1,500 km that is still more than 6,000 km/h
IMPOSSIBLE_GAP_MS = (11 * MINUTE, 15 * MINUTE)


@dataclass
class Plan:
    """A scenario instance: its entity and its transactions (time, key, value, id)."""

    expected_rule: str
    entity_type: str  # "card" | "device"
    user: User | None
    device_id: str | None
    txns: list[tuple[int, bytes, bytes, str]] = field(default_factory=list)
    due_ms: list[int] = field(default_factory=list)  # scheduled times before jitter
    scenario_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, due_ms: int, user: User, txn: tuple[str, bytes, int]) -> None:
        txn_id, value, t_ms = txn
        self.txns.append((t_ms, user.user_id.encode(), value, txn_id))
        self.due_ms.append(due_ms)

    def truth(self, scenario_type: str, token_key: str) -> dict[str, Any]:
        """The ground-truth record (card numbers appear only as token and last 4)."""
        if self.entity_type == "card":
            assert self.user is not None
            entity_id = card_token(self.user.card_number, token_key)
            last4: str | None = card_last4(self.user.card_number)
            user_id: str | None = self.user.user_id
        else:
            entity_id, last4, user_id = self.device_id, None, None
        times = [t for t, *_ in self.txns]
        return {
            "kind": "scenario",
            "scenario_id": self.scenario_id,
            "scenario_type": scenario_type,
            "expected_rule": self.expected_rule,
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
    name: str
    mean_events: float
    max_span_ms: int  # from the first to the last event, at most
    build: Callable[[TransactionGenerator, int], Plan | None]

    @property
    def expected_rule(self) -> str:
        return SCENARIO_RULES[self.name]


def _finish(gen: TransactionGenerator, user: User, last_ms: int, city: int) -> None:
    gen.last_ms[user.index] = last_ms
    gen.cur_city[user.index] = city
    gen.hold(user, last_ms + REST_AFTER_MS)


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
    _finish(gen, user, t, city)
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
        _finish(gen, user, t, city)
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
    _finish(gen, user, t2, b)
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
    _finish(gen, user, t2, b)
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
    _finish(gen, user, t, city)
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
    _finish(gen, user, now, city)
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
    )
}
