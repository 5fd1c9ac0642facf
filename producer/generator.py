"""The pure transaction stream: a seeded RNG and a simulated clock in, events out.

Time is cut into slots of `1 / events_per_second` seconds of event time starting at `start_ms`.
Each slot yields exactly one event: a due event of a fraud scenario or look-alike in flight, a
new scenario's or look-alike's first event, an invalid record, or a normal purchase. The stream
depends only on the population, the seed, the start time and the options, so the same inputs
give byte-identical output.

Normal traffic is shaped so the docs/contract.md rules stay quiet:
- a card rests `MIN_CARD_GAP_MS` (2.5 min) after each purchase, so a 5-min window never
  holds more than 3 of its normal transactions (VELOCITY);
- every device belongs to one user (DEVICE_SHARING);
- a card only changes city after a gap that a car could cover, at least 30 min, and neighbour
  towns are under 100 km away (GEO_HOP, IMPOSSIBLE_TRAVEL);
- amounts stay within [3.00, 480.00] (CARD_TESTING, HIGH_VALUE).
Big online spenders (population.py) make some of their normal purchases online at 3-8 times
their usual amount, still within that range.
The only exception is over-capacity: more events per second than the population can spend with
those rests (about population / 150 s); `overcapacity` counts such picks.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from bisect import bisect
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from producer import invalid, lookalikes, scenarios
from producer.places import CITIES, NEARBY, distance_km
from producer.population import (
    CATEGORIES,
    CATEGORY_BIT,
    CATEGORY_NAMES,
    MAX_NORMAL_AMOUNT,
    MIN_AMOUNT,
    PERIOD_OF_HOUR,
    Population,
    User,
    build_population,
    normal_amount,
)
from producer.records import encode_txn

MIN_CARD_GAP_MS = 150_000  # a constant rest keeps the resting cards in a FIFO (fast)
TRAVEL_MIN_GAP_MS = 30 * 60_000
TRAVEL_SPEED_KMH = 50.0
NEARBY_TRIP_SHARE = 0.08
CITY_JITTER_DEG = 0.02
SECOND_DEVICE_SHARE = 0.25
BIG_ONLINE_PURCHASE_SHARE = 0.1  # of a big online spender's purchases
BIG_ONLINE_RATIO = (3.0, 8.0)  # times the card's usual amount


class Event(NamedTuple):
    """One record to send: Kafka key and value, what it is, and truth records it completes."""

    key: bytes | None
    value: bytes
    kind: str  # "normal" | "fraud" | "lookalike" | "invalid"
    label: str  # scenario type, look-alike type, invalid kind, or "" for normal traffic
    event_time_ms: int
    transaction_id: str | None
    truth: tuple[dict[str, Any], ...] = ()


@dataclass
class _Scenario:
    truth: dict[str, Any]
    remaining: int
    emitted: list[str] = field(default_factory=list)


@dataclass
class GeneratorOptions:
    """What shapes the stream besides the population."""

    seed: int = 42
    start_ms: int = 1_795_000_000_000
    events_per_second: float = 50.0
    fraud_rate: float = 0.01
    # share of events that are legit look-alikes of behavioural fraud (producer/lookalikes.py)
    lookalike_rate: float = 0.003
    bad_records: float = 0.0
    out_of_order_ms: int = 0
    # no scenario starts unless it can finish by this event time (None: no known end)
    horizon_ms: int | None = None
    scenario_weights: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(scenarios.SCENARIOS, 1.0)
    )


class TransactionGenerator:
    """Iterate to get `Event`s slot by slot; call `drain()` to finish scenarios in flight."""

    def __init__(self, population: Population, options: GeneratorOptions, token_key: str) -> None:
        self.pop = population
        self.opts = options
        self.token_key = token_key
        self.rng = random.Random(f"stream:{options.seed}:{options.start_ms}")
        self.slot_ms = 1000.0 / options.events_per_second
        self.slot = 0
        n = len(population.users)
        self.last_ms: list[int] = [-(10**15)] * n
        self.cur_city: list[int] = [u.home for u in population.users]
        self._available: list[int] = list(range(n))
        self._pos: list[int] = list(range(n))  # index of each user in _available, or -1
        # each card's history as a behaviour model sees it: purchases, sum of ln(amount), a bit
        # per category bought; and the phone that replaced a user's first device (new_phone)
        self.history: list[int] = [0] * n
        self.log_amounts: list[float] = [0.0] * n
        self.bought: list[int] = [0] * n
        self.phone: dict[int, str] = {}
        self.big_online_users: tuple[int, ...] = tuple(
            u.index for u in population.users if u.big_online_category is not None
        )
        self._resting: deque[tuple[int, int]] = deque()  # FIFO of (available_at_ms, user)
        self._busy: list[tuple[int, int]] = []  # heap of (available_at_ms, user) for scenarios
        self._pending: list[tuple[int, int, Event, _Scenario]] = []
        self._seq = 0
        self.overcapacity = 0
        self.counts: Counter[str] = Counter()
        unknown = set(options.scenario_weights) - set(scenarios.SCENARIOS)
        if unknown:
            raise ValueError(
                f"unknown scenario(s) {sorted(unknown)}; known: {sorted(scenarios.SCENARIOS)}"
            )
        weights = {k: float(v) for k, v in options.scenario_weights.items() if v > 0}
        self._scenario_names = tuple(weights)
        total = sum(weights.values())
        acc = 0.0
        cum = []
        for name in self._scenario_names:
            acc += weights[name]
            cum.append(acc)
        self._scenario_cum = tuple(cum)
        mean_events = (
            sum(weights[k] * scenarios.SCENARIOS[k].mean_events for k in weights) / total
            if total
            else 1.0
        )
        f = options.fraud_rate if self._scenario_names else 0.0
        # P(start a scenario in a free slot) so that about `fraud_rate` of all events are fraud
        self._p_start = min(1.0, f / (mean_events * (1.0 - f))) if f < 1.0 else 1.0
        self._p_bad = options.bad_records
        # look-alikes are one event each
        self._p_look = min(1.0, options.lookalike_rate / max(1e-9, 1.0 - f))

    # ---- clock -------------------------------------------------------------------------
    def slot_time(self, slot: int) -> int:
        """Event time (epoch ms) of a slot."""
        return self.opts.start_ms + int(slot * self.slot_ms)

    # ---- user pool ---------------------------------------------------------------------
    def _release_due(self, now_ms: int) -> None:
        avail, pos = self._available, self._pos
        resting = self._resting
        while resting and resting[0][0] <= now_ms:
            u = resting.popleft()[1]
            pos[u] = len(avail)
            avail.append(u)
        busy = self._busy
        while busy and busy[0][0] <= now_ms:
            u = heapq.heappop(busy)[1]
            pos[u] = len(avail)
            avail.append(u)

    def _take(self, u: int) -> None:
        pos = self._pos[u]
        last = self._available.pop()
        if last != u:
            self._available[pos] = last
            self._pos[last] = pos
        self._pos[u] = -1

    def hold(self, user: User, until_ms: int) -> None:
        """Mark a taken user busy until `until_ms` (then back in the pool)."""
        heapq.heappush(self._busy, (until_ms, user.index))

    def take_idle_user(
        self,
        now_ms: int,
        idle_ms: int,
        tries: int = 30,
        accept: Callable[[User], bool] | None = None,
        among: Sequence[int] | None = None,
    ) -> User | None:
        """Take a random pooled user idle for at least `idle_ms` (and passing `accept`);
        `among`: draw from these users only (those of them in the pool)."""
        avail = self._available
        for _ in range(tries):
            if not avail:
                return None
            if among is None:
                u = avail[self.rng.randrange(len(avail))]
            else:
                if not among:
                    return None
                u = among[self.rng.randrange(len(among))]
                if self._pos[u] < 0:
                    continue
            user = self.pop.users[u]
            if now_ms - self.last_ms[u] >= idle_ms and (accept is None or accept(user)):
                self._take(u)
                return user
        return None

    def _take_normal_user(self, now_ms: int) -> User:
        avail = self._available
        if not avail:
            # over capacity: the card that has rested longest goes early
            self.overcapacity += 1
            if self._resting and (not self._busy or self._resting[0] < self._busy[0]):
                return self.pop.users[self._resting.popleft()[1]]
            return self.pop.users[heapq.heappop(self._busy)[1]]
        rand = self.rng.random
        users = self.pop.users
        hour = (now_ms // 3_600_000) % 24
        n = len(avail)
        for _ in range(3):
            u = avail[int(rand() * n)]
            user = users[u]
            if rand() < user.activity[PERIOD_OF_HOUR[(hour + user.tz_hours) % 24]]:
                break
        self._take(u)
        return user

    # ---- building blocks for scenarios ---------------------------------------------------
    def new_txn_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def new_scenario_id(self) -> str:
        return f"sc_{self.rng.getrandbits(64):016x}"

    def new_lookalike_id(self) -> str:
        return f"la_{self.rng.getrandbits(64):016x}"

    def new_device_id(self) -> str:
        """A device no user has had (the population's are `d_<number>`)."""
        return f"d_{self.rng.getrandbits(48):012x}x"

    def local_period(self, user: User, t_ms: int) -> int:
        """The part of the user's local day (PERIOD_OF_HOUR) at `t_ms`."""
        return PERIOD_OF_HOUR[((t_ms // 3_600_000) + user.tz_hours) % 24]

    def pick_category(self, user: User, t_ms: int) -> str:
        cum = user.cat_cum_weights[self.local_period(user, t_ms)]
        return CATEGORY_NAMES[bisect(cum, self.rng.random() * cum[-1])]

    def usual_amount(self, user: User) -> float | None:
        """The card's usual amount so far: the geometric mean of its purchases (None before
        the first), as the behaviour feature `amount_ratio` divides by."""
        n = self.history[user.index]
        return math.exp(self.log_amounts[user.index] / n) if n else None

    def has_bought(self, user: User, category: str) -> bool:
        return bool(self.bought[user.index] & CATEGORY_BIT[category])

    def usual_device(self, user: User) -> str:
        """The device most of the user's purchases come from."""
        return self.phone.get(user.index, user.devices[0])

    def big_online_amount(self, user: User) -> float:
        """A big online spender's big purchase: 3-8 times the usual amount, in the normal range."""
        usual = self.usual_amount(user) or CATEGORIES["online"][0]
        x = usual * self.rng.uniform(*BIG_ONLINE_RATIO)
        return round(min(MAX_NORMAL_AMOUNT, max(MIN_AMOUNT, x)), 2)

    def txn(
        self,
        t_ms: int,
        user: User,
        *,
        category: str,
        amount: float,
        city: int,
        device: str | None = None,
        channel: str | None = None,
    ) -> tuple[str, bytes, int]:
        """Encode a transaction at event time `t_ms` (before jitter); returns (id, bytes, time)."""
        rng = self.rng
        rand = rng.random
        txn_id = f"{rng.getrandbits(128):032x}"
        c = CITIES[city]
        lat = round(c.lat + (2 * rand() - 1) * CITY_JITTER_DEG, 4)
        lon = round(c.lon + (2 * rand() - 1) * CITY_JITTER_DEG, 4)
        names = self.pop.merchants[category]
        merchant = names[int(rand() * len(names))]
        if device is None:
            devs = user.devices
            if len(devs) > 1 and rand() < SECOND_DEVICE_SHARE:
                device = devs[1]
            else:
                device = self.phone.get(user.index, devs[0])
        u = user.index
        self.history[u] += 1
        self.log_amounts[u] += math.log(amount)
        self.bought[u] |= CATEGORY_BIT[category]
        if self.opts.out_of_order_ms:
            t_ms -= rng.randint(0, self.opts.out_of_order_ms)
        value = encode_txn(
            txn_id,
            user.card_number,
            user.user_id,
            device,
            amount,
            merchant,
            category,
            channel or CATEGORIES[category][2],
            city,
            lat,
            lon,
            t_ms,
        )
        return txn_id, value, t_ms

    # ---- the stream ----------------------------------------------------------------------
    def _normal(self, now_ms: int) -> Event:
        user = self._take_normal_user(now_ms)
        u = user.index
        rng = self.rng
        city = self.cur_city[u]
        desired = user.home
        if rng.random() < NEARBY_TRIP_SHARE and NEARBY[user.home]:
            near = NEARBY[user.home]
            desired = near[int(rng.random() * len(near))]
        if desired != city:
            gap = now_ms - self.last_ms[u]
            need = max(TRAVEL_MIN_GAP_MS, distance_km(city, desired) / TRAVEL_SPEED_KMH * 3.6e6)
            if gap >= need:
                city = desired
        channel = None
        if user.big_online_category is not None and rng.random() < BIG_ONLINE_PURCHASE_SHARE:
            category, channel = user.big_online_category, "online"
            amount = self.big_online_amount(user)
        else:
            category = self.pick_category(user, now_ms)
            amount = normal_amount(rng, category)
        txn_id, value, t = self.txn(
            now_ms, user, category=category, amount=amount, city=city, channel=channel
        )
        self.cur_city[u] = city
        self.last_ms[u] = now_ms
        self._resting.append((now_ms + MIN_CARD_GAP_MS, u))
        return Event(user.user_id.encode(), value, "normal", "", t, txn_id)

    def _start_scenario(self, now_ms: int) -> Event | None:
        name = self.rng.choices(self._scenario_names, cum_weights=self._scenario_cum)[0]
        return self._start(scenarios.SCENARIOS[name], "fraud", now_ms)

    def _start_lookalike(self, now_ms: int) -> Event | None:
        name = self.rng.choice(lookalikes.LOOKALIKE_NAMES)
        return self._start(lookalikes.LOOKALIKES[name], "lookalike", now_ms)

    def _start(self, spec: scenarios.ScenarioSpec, kind: str, now_ms: int) -> Event | None:
        """Plan a scenario or look-alike; its first event when due now (else None: all its
        events wait for their time, e.g. after a journey)."""
        horizon = self.opts.horizon_ms
        if horizon is not None and now_ms + spec.max_span_ms > horizon:
            return None
        plan = spec.build(self, now_ms)
        if plan is None:
            return None
        truth = plan.truth(spec.name, self.token_key)
        sc = _Scenario(truth=truth, remaining=len(plan.txns))
        first: Event | None = None
        for i, (t_ms, key, value, txn_id) in enumerate(plan.txns):
            ev = Event(key, value, kind, spec.name, t_ms, txn_id)
            if i == 0 and plan.due_ms[0] <= now_ms:
                first = ev
            else:
                self._seq += 1
                heapq.heappush(self._pending, (plan.due_ms[i], self._seq, ev, sc))
        return None if first is None else self._complete(first, sc)

    def _complete(self, ev: Event, sc: _Scenario) -> Event:
        sc.remaining -= 1
        sc.emitted.append(ev.transaction_id or "")
        self.counts[ev.label] += 1
        if sc.remaining == 0:
            self.counts[("lookalikes:" if ev.kind == "lookalike" else "scenarios:") + ev.label] += 1
            return Event(
                ev.key,
                ev.value,
                ev.kind,
                ev.label,
                ev.event_time_ms,
                ev.transaction_id,
                (sc.truth,),
            )
        return ev

    def next_event(self) -> Event:
        """The event of the next slot."""
        now = self.slot_time(self.slot)
        self.slot += 1
        self._release_due(now)
        pending = self._pending
        if pending and pending[0][0] <= now:
            _, _, ev, sc = heapq.heappop(pending)
            return self._complete(ev, sc)
        r = self.rng.random()
        if r < self._p_bad:
            ev = invalid.make_invalid(self, now)
            self.counts["invalid:" + ev.label] += 1
            return ev
        if r < self._p_bad + self._p_start:
            ev = self._start_scenario(now)
            if ev is not None:
                return ev
        elif r < self._p_bad + self._p_start + self._p_look:
            ev = self._start_lookalike(now)
            if ev is not None:
                return ev
        ev = self._normal(now)
        self.counts["normal"] += 1
        return ev

    def __iter__(self) -> Iterator[Event]:
        while True:
            yield self.next_event()

    def take(self, count: int) -> Iterator[Event]:
        """`count` slots (no scenario starts that would end after them), then `drain()`."""
        if self.opts.horizon_ms is None:
            self.opts.horizon_ms = self.slot_time(self.slot + count)
        for _ in range(count):
            yield self.next_event()
        yield from self.drain()

    def drain(self) -> Iterator[Event]:
        """Emit at once the remaining events of scenarios in flight, in event-time order,
        so every scenario in the truth is complete. With a horizon there are none (or a few
        seconds' worth when wall time and event time drift apart)."""
        while self._pending:
            _, _, ev, sc = heapq.heappop(self._pending)
            yield self._complete(ev, sc)

    def truncate(self) -> list[dict[str, Any]]:
        """Drop the unsent events of scenarios in flight (used on Ctrl-C, so nothing lands in
        the future); return their truth with only the sent transactions and complete=false."""
        partial: dict[int, _Scenario] = {}
        for _, _, _, sc in self._pending:
            partial[id(sc)] = sc
        self._pending.clear()
        out = []
        for sc in partial.values():
            if not sc.emitted:
                continue
            out.append(
                {
                    **sc.truth,
                    "transaction_ids": list(sc.emitted),
                    "complete": False,
                    "planned_transactions": len(sc.truth["transaction_ids"]),
                }
            )
            self.counts["truncated:" + truth_type(sc.truth)] += 1
        return out

    @property
    def in_flight(self) -> int:
        """Scenario events scheduled but not yet emitted."""
        return len(self._pending)

    def capacity_eps(self) -> float:
        """Events per second of event time the population sustains with rested cards."""
        return len(self.pop.users) / (MIN_CARD_GAP_MS / 1000)


def truth_type(record: Mapping[str, Any]) -> str:
    """A truth record's type: scenario type, look-alike type or invalid kind."""
    return str(
        record.get("scenario_type") or record.get("lookalike_type") or record.get("invalid_kind")
    )


def generate(
    population: Population, options: GeneratorOptions, token_key: str, count: int
) -> list[Event]:
    """Convenience for tests and benchmarks: `count` slots plus the drained scenarios."""
    return list(TransactionGenerator(population, options, token_key).take(count))


def labelled_stream(
    count: int,
    seed: int,
    token_key: str,
    *,
    population: int = 10_000,
    start_ms: int = GeneratorOptions.start_ms,
    **options: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A labelled stream for training and tests, without Kafka: the valid transactions of
    `count` slots (plus drained scenarios) exactly as `fraudctl produce` sends them, parsed
    from JSON, and every truth record (`docs/contract.md`, "Truth file"), in order. The
    population comes from `seed` like the producer's; `options` are further
    `GeneratorOptions` (`events_per_second`, `fraud_rate`, `lookalike_rate`,
    `scenario_weights`, ...). Invalid records are left out (`bad_records` is 0 unless given)."""
    opts = GeneratorOptions(seed=seed, start_ms=start_ms, **options)
    events: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    for ev in generate(build_population(seed, population), opts, token_key, count):
        if ev.kind != "invalid":
            events.append(json.loads(ev.value))
        truth.extend(ev.truth)
    return events, truth
