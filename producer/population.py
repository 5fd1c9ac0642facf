"""The card holders: a population that is a pure function of the seed.

Each user has one card, one or two devices, a home city from `places.CITIES` (weighted by
population), spending preferences per merchant category and an activity curve over the hours of
the day. Merchant names come from Faker, seeded the same way.

Two traits shape what a card's history looks like to a behaviour model (they come from their own
RNG, so the draws above are the same as before they existed):
- every user never buys 2-4 categories (zero weight), so "a category this card never buys" is a
  property of the card, not of a short history; the behavioural fraud scenarios buy there;
- `BIG_ONLINE_SHARE` of users are big online spenders: besides their usual purchases, a share of
  them (`generator.BIG_ONLINE_PURCHASE_SHARE`) are online purchases of 3-8 times their usual
  amount in one category of their own, so for them a big online purchase is normal.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

from faker import Faker

from producer.places import CITIES

# category -> (median amount, log-sigma, channel, share of spending in [night, morning, midday,
# evening]); amounts are log-normal, floored at MIN_AMOUNT and capped at MAX_NORMAL_AMOUNT.
CATEGORIES: dict[str, tuple[float, float, str, tuple[float, float, float, float]]] = {
    "grocery": (42.0, 0.60, "pos", (0.2, 1.0, 1.0, 1.2)),
    "restaurant": (31.0, 0.55, "pos", (0.3, 0.4, 1.2, 1.6)),
    "coffee": (6.5, 0.35, "pos", (0.1, 2.0, 0.8, 0.3)),
    "gas": (45.0, 0.30, "pos", (0.3, 1.2, 1.0, 1.0)),
    "pharmacy": (19.0, 0.60, "pos", (0.2, 0.8, 1.0, 1.0)),
    "retail": (55.0, 0.75, "pos", (0.1, 0.6, 1.3, 1.1)),
    "online": (36.0, 0.80, "online", (1.0, 0.8, 1.0, 1.3)),
    "entertainment": (27.0, 0.60, "online", (0.8, 0.3, 0.8, 1.6)),
    "electronics": (95.0, 0.80, "pos", (0.1, 0.5, 1.2, 1.0)),
    "travel": (160.0, 0.55, "online", (0.3, 0.9, 1.0, 1.0)),
}
CATEGORY_NAMES: tuple[str, ...] = tuple(CATEGORIES)
MIN_AMOUNT = 3.00  # normal spending never looks like a card-testing probe (< 2.00)
MAX_NORMAL_AMOUNT = 480.00  # normal spending never reaches the HIGH_VALUE threshold (500.00)
MERCHANTS_PER_CATEGORY = 12
# Local-hour activity (0-23) in four periods; a user's own curve scales it.
PERIOD_OF_HOUR: tuple[int, ...] = tuple(
    0 if h < 6 else 1 if h < 11 else 2 if h < 17 else 3 for h in range(24)
)
CATEGORY_BIT: dict[str, int] = {c: 1 << i for i, c in enumerate(CATEGORY_NAMES)}
NEVER_BUYS = (2, 4)  # categories each user never buys, at least and at most
BIG_ONLINE_SHARE = 0.08  # users whose normal purchases include big online ones
BIG_ONLINE_CATEGORIES = ("online", "electronics", "travel")


@dataclass(slots=True)
class User:
    """One card holder and their card."""

    index: int
    user_id: str
    card_number: str
    devices: tuple[str, ...]
    home: int  # index into CITIES
    tz_hours: int  # offset of local time from UTC, from the home longitude
    cat_cum_weights: tuple[tuple[float, ...], ...]  # per period, cumulative category weights
    activity: tuple[float, ...]  # per period, probability of accepting a purchase (0.15-1)
    never_buys: frozenset[str] = frozenset()  # categories of zero weight
    big_online_category: str | None = None  # set for big online spenders (see module doc)


@dataclass(slots=True)
class Population:
    """All users plus the merchants they buy from (names pre-encoded as JSON strings)."""

    seed: int
    users: list[User]
    merchants: dict[str, tuple[str, ...]]  # category -> JSON-encoded merchant names


def luhn_check_digit(partial: str) -> str:
    """The check digit that makes `partial + digit` pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True when `number` passes the Luhn checksum."""
    return luhn_check_digit(number[:-1]) == number[-1]


def _card_number(rng: random.Random) -> str:
    prefix = rng.choice(("4", "4", "4", "51", "52", "53", "54", "55"))
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(15 - len(prefix)))
    return body + luhn_check_digit(body)


def _merchants(seed: int) -> dict[str, tuple[str, ...]]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    suffix = {
        "grocery": "Market",
        "restaurant": "Kitchen",
        "coffee": "Coffee",
        "gas": "Fuel",
        "pharmacy": "Pharmacy",
        "retail": "Outfitters",
        "online": "Online",
        "entertainment": "Entertainment",
        "electronics": "Electronics",
        "travel": "Travel",
    }
    out: dict[str, tuple[str, ...]] = {}
    for cat in CATEGORY_NAMES:
        names = []
        for _ in range(MERCHANTS_PER_CATEGORY):
            names.append(json.dumps(f"{fake.last_name()} {suffix[cat]}"))
        out[cat] = tuple(names)
    return out


def build_population(seed: int, size: int = 10_000) -> Population:
    """Build `size` users deterministically from `seed` (same seed, same population)."""
    rng = random.Random(f"population:{seed}")
    traits = random.Random(f"traits:{seed}")
    city_cum = []
    acc = 0.0
    for c in CITIES:
        acc += c.weight
        city_cum.append(acc)
    used_cards: set[str] = set()
    users: list[User] = []
    for i in range(size):
        card = _card_number(rng)
        while card in used_cards:
            card = _card_number(rng)
        used_cards.add(card)
        n_dev = 1 if rng.random() < 0.6 else 2
        devices = tuple(f"d_{i * 2 + k}" for k in range(n_dev))
        home = rng.choices(range(len(CITIES)), cum_weights=city_cum)[0]
        taste = [rng.gammavariate(0.8, 1.0) + 0.02 for _ in CATEGORY_NAMES]
        big = traits.choice(BIG_ONLINE_CATEGORIES) if traits.random() < BIG_ONLINE_SHARE else None
        never = frozenset(
            traits.sample([c for c in CATEGORY_NAMES if c != big], traits.randint(*NEVER_BUYS))
        )
        taste = [0.0 if c in never else w for c, w in zip(CATEGORY_NAMES, taste, strict=True)]
        cum_by_period = []
        for period in range(4):
            acc = 0.0
            cum = []
            for cat, w in zip(CATEGORY_NAMES, taste, strict=True):
                acc += w * CATEGORIES[cat][3][period]
                cum.append(acc)
            cum_by_period.append(tuple(cum))
        night_owl = rng.random() < 0.15
        activity = (
            0.6 if night_owl else 0.15,
            rng.uniform(0.5, 1.0),
            rng.uniform(0.7, 1.0),
            rng.uniform(0.6, 1.0),
        )
        users.append(
            User(
                index=i,
                user_id=f"u_{i}",
                card_number=card,
                devices=devices,
                home=home,
                tz_hours=round(CITIES[home].lon / 15),
                cat_cum_weights=tuple(cum_by_period),
                activity=activity,
                never_buys=never,
                big_online_category=big,
            )
        )
    return Population(seed=seed, users=users, merchants=_merchants(seed))


def normal_amount(rng: random.Random, category: str) -> float:
    """A purchase amount for `category`: log-normal, within [MIN_AMOUNT, MAX_NORMAL_AMOUNT]."""
    median, sigma = CATEGORIES[category][0], CATEGORIES[category][1]
    x = median * math.exp(sigma * rng.gauss(0.0, 1.0))
    return round(min(MAX_NORMAL_AMOUNT, max(MIN_AMOUNT, x)), 2)
