"""Behavioural fraud (RISK_SCORE) and legit look-alikes, judged on the emitted bytes: each
instance's shape against the card's earlier purchases in the same stream (as the behaviour
features see them), its truth record, and that no threshold rule trips on it."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from typing import Any

import pytest

from config.rules import Rules
from producer.generator import Event, GeneratorOptions, generate, labelled_stream
from producer.places import CITIES, haversine_km
from producer.population import CATEGORIES, Population, build_population
from producer.scenarios import MIN_HISTORY, SCENARIOS
from tests.producer import rule_checker
from tests.producer.conftest import START_MS, TOKEN_KEY
from udfs.card_token import card_last4, card_token
from udfs.risk_score import risk_scores

MIN = 60_000
HOUR = 60 * MIN
HIGH_VALUE = float(Rules().high_value.amount_over)
BEHAVIOURAL = ("account_takeover", "account_drain")
LOOKALIKES = ("travel", "habitual_big_online", "new_phone")
# 2,000 cards at 2 events/s: each buys about every 17 min, so most have a history after an hour;
# 40k slots are 5.6 h, and every scenario started is drained to its end (no horizon)
STREAM = {
    "seed": 11,
    "events_per_second": 2.0,
    "fraud_rate": 0.03,
    "lookalike_rate": 0.02,
    "horizon_ms": START_MS + 10**12,
}
COUNT = 40_000


@pytest.fixture(scope="module")
def small_population() -> Population:
    return build_population(11, 2_000)


@pytest.fixture(scope="module")
def stream(small_population) -> list[Event]:
    options = GeneratorOptions(start_ms=START_MS, **STREAM)  # type: ignore[arg-type]
    return generate(small_population, options, TOKEN_KEY, COUNT)


@pytest.fixture(scope="module")
def records(stream) -> list[dict[str, Any]]:
    return rule_checker.parse_valid([e.value for e in stream])


@pytest.fixture(scope="module")
def by_card(records) -> dict[str, list[dict[str, Any]]]:
    """Each card's purchases in event-time order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        out[r["card_number"]].append(r)
    for txns in out.values():
        txns.sort(key=lambda r: r["t"])
    return out


def _truths(stream: list[Event]) -> list[dict[str, Any]]:
    return [t for e in stream for t in e.truth]


def _instances(stream, by_card, type_key: str, name: str) -> list[tuple[dict, list, list]]:
    """(truth, its transactions, the card's purchases before the first) per instance."""
    by_id = {r["transaction_id"]: r for txns in by_card.values() for r in txns}
    out = []
    for t in _truths(stream):
        if t.get(type_key) != name:
            continue
        txns = sorted((by_id[i] for i in t["transaction_ids"]), key=lambda r: r["t"])
        card = by_card[txns[0]["card_number"]]
        earlier = [r for r in card if r["t"] < txns[0]["t"]]
        out.append((t, txns, earlier))
    assert len(out) >= 15, f"too few {name} to judge: {len(out)}"
    return out


def _usual(earlier: list[dict[str, Any]]) -> float:
    """The geometric mean of the amounts: the behaviour feature amount_ratio's denominator."""
    return math.exp(sum(math.log(r["amount"]) for r in earlier) / len(earlier))


def _km(a: dict[str, Any], b: dict[str, Any]) -> float:
    la, lb = a["location"], b["location"]
    return haversine_km(la["lat"], la["lon"], lb["lat"], lb["lon"])


def _km_to_city(r: dict[str, Any], city: int) -> float:
    c = CITIES[city]
    return haversine_km(r["location"]["lat"], r["location"]["lon"], c.lat, c.lon)


def _users(population: Population) -> dict[str, Any]:
    return {u.user_id: u for u in population.users}


def _ratio_between(amount: float, usual: float, lo: float, hi: float) -> bool:
    # amounts are rounded to the cent
    return lo * usual - 0.006 <= amount <= hi * usual + 0.006


# ---- behavioural fraud -------------------------------------------------------------------------


def test_account_takeover_shape(stream, by_card, small_population) -> None:
    users = _users(small_population)
    seconds = 0
    for truth, txns, earlier in _instances(stream, by_card, "scenario_type", "account_takeover"):
        user = users[truth["user_id"]]
        assert truth["expected_rule"] == "RISK_SCORE" and truth["entity_type"] == "card"
        assert len(earlier) >= MIN_HISTORY, "a card with history"
        assert 1 <= len(txns) <= 2
        seconds += len(txns) == 2
        previous = earlier[-1]
        gap_h = (txns[0]["t"] - previous["t"]) / HOUR
        assert gap_h >= 1.5, "hours after the card's last purchase"
        assert _km(previous, txns[0]) / gap_h <= 460, "a journey, not impossible travel"
        seen_devices = {r["device_id"] for r in earlier}
        seen_categories = {r["merchant_category"] for r in earlier}
        seen_cities = {r["location"]["city"] for r in earlier}
        for i, r in enumerate(txns):
            assert r["device_id"] not in user.devices and r["device_id"] not in seen_devices
            assert r["channel"] == "online"
            assert r["location"]["city"] not in seen_cities
            assert _km(previous, r) >= 390 and _km_to_city(r, user.home) >= 390, "far away"
            assert min(_km(e, r) for e in earlier) >= 300, "far from every usual place"
            before = earlier + txns[:i]
            assert r["merchant_category"] not in {b["merchant_category"] for b in before}
            assert r["merchant_category"] not in seen_categories
            assert _ratio_between(r["amount"], _usual(before), 4.0, 10.0), (r["amount"], before)
            assert r["amount"] <= 480.0 < HIGH_VALUE
        if len(txns) == 2:
            assert 20 * MIN <= txns[1]["t"] - txns[0]["t"] <= 45 * MIN
            assert txns[0]["location"]["city"] == txns[1]["location"]["city"]
            assert txns[0]["device_id"] == txns[1]["device_id"]
        # the holder, at home all along, buys next only a journey's time later
        later = [r for r in by_card[txns[0]["card_number"]] if r["t"] > txns[-1]["t"]]
        if later:
            gap_h = (later[0]["t"] - txns[-1]["t"]) / HOUR
            assert _km(txns[-1], later[0]) / gap_h <= 600
    assert seconds >= 3, "some takeovers buy twice"


def test_account_drain_shape(stream, by_card, small_population) -> None:
    users = _users(small_population)
    sizes = Counter()
    for truth, txns, earlier in _instances(stream, by_card, "scenario_type", "account_drain"):
        user = users[truth["user_id"]]
        assert truth["expected_rule"] == "RISK_SCORE"
        assert len(earlier) >= MIN_HISTORY
        assert 2 <= len(txns) <= 3
        sizes[len(txns)] += 1
        assert txns[0]["t"] - earlier[-1]["t"] >= 150_000, "the card rested"
        for a, b in itertools.pairwise(txns):
            assert 20 * MIN <= b["t"] - a["t"] <= 60 * MIN
        for i, r in enumerate(txns):
            assert r["location"]["city"] == CITIES[user.home].name
            # the user's first device, or the phone that replaced it (new_phone)
            phones = {e["device_id"] for e in earlier} - set(user.devices)
            assert r["device_id"] in (user.devices[0], *phones)
            before = earlier + txns[:i]
            assert r["merchant_category"] not in {b["merchant_category"] for b in before}
            assert _ratio_between(r["amount"], _usual(before), 5.0, 10.0)
            assert r["amount"] <= 480.0
            assert r["channel"] == CATEGORIES[r["merchant_category"]][2]
    assert set(sizes) == {2, 3}


def test_behavioural_cards_mostly_used_their_device_before(stream, by_card) -> None:
    """The drain's 'usual device' is the user's first one: seen on the card before almost
    always (a card that used only its second device so far is the rare exception)."""
    seen = total = 0
    for _, txns, earlier in _instances(stream, by_card, "scenario_type", "account_drain"):
        total += 1
        seen += txns[0]["device_id"] in {r["device_id"] for r in earlier}
    assert seen / total >= 0.9


# ---- look-alikes -------------------------------------------------------------------------------


def test_travel_lookalike_shape(stream, by_card, small_population) -> None:
    users = _users(small_population)
    for truth, txns, earlier in _instances(stream, by_card, "lookalike_type", "travel"):
        user = users[truth["user_id"]]
        (r,) = txns
        assert len(earlier) >= MIN_HISTORY
        previous = earlier[-1]
        gap_h = (r["t"] - previous["t"]) / HOUR
        assert gap_h >= 1.5 and _km(previous, r) / gap_h <= 460
        assert _km(previous, r) >= 390 and _km_to_city(r, user.home) >= 390
        assert r["channel"] == "pos"
        assert r["device_id"] in {e["device_id"] for e in earlier} | set(user.devices)
        assert r["merchant_category"] in {e["merchant_category"] for e in earlier}
        assert _ratio_between(r["amount"], _usual(earlier), 0.5, 2.0) or r["amount"] == 3.0


def test_habitual_big_online_lookalike_shape(stream, by_card, small_population) -> None:
    users = _users(small_population)
    for truth, txns, earlier in _instances(
        stream, by_card, "lookalike_type", "habitual_big_online"
    ):
        user = users[truth["user_id"]]
        (r,) = txns
        assert user.big_online_category == r["merchant_category"]
        assert r["merchant_category"] in {e["merchant_category"] for e in earlier}
        assert r["channel"] == "online"
        assert r["device_id"] in {e["device_id"] for e in earlier} | set(user.devices)
        assert r["location"]["city"] == earlier[-1]["location"]["city"]
        assert _ratio_between(r["amount"], _usual(earlier), 3.0, 8.0) or r["amount"] == 480.0
        assert r["amount"] <= 480.0


def test_big_online_spenders_buy_big_online_in_normal_traffic(stream, small_population) -> None:
    users = _users(small_population)
    big = Counter()
    for e in stream:
        if e.kind != "normal":
            continue
        r = json.loads(e.value)
        user = users[r["user_id"]]
        if user.big_online_category is None:
            assert r["merchant_category"] not in user.never_buys
            continue
        if r["channel"] == "online" and r["merchant_category"] == user.big_online_category:
            big["big"] += 1
        big["all"] += 1
    assert 0.05 < big["big"] / big["all"] < 0.3
    share = sum(u.big_online_category is not None for u in small_population.users) / 2_000
    assert 0.04 < share < 0.12


def test_new_phone_lookalike_shape(stream, by_card, small_population) -> None:
    users = _users(small_population)
    # devices of other new phones and of fraud (account takeover, device farm)
    replaced = {
        json.loads(e.value)["device_id"]
        for e in stream
        if e.kind == "fraud" or e.label == "new_phone"
    }
    kept = 0
    for truth, txns, earlier in _instances(stream, by_card, "lookalike_type", "new_phone"):
        user = users[truth["user_id"]]
        (r,) = txns
        assert r["device_id"] not in user.devices
        assert r["device_id"] not in {e["device_id"] for e in earlier}
        assert r["location"]["city"] == earlier[-1]["location"]["city"]
        assert r["merchant_category"] in {e["merchant_category"] for e in earlier}
        assert r["channel"] == CATEGORIES[r["merchant_category"]][2]
        assert _ratio_between(r["amount"], _usual(earlier), 0.5, 2.0) or r["amount"] == 3.0
        # the new phone stays the user's: their next normal purchase off their first two
        # devices is on it (unless another new phone came first)
        later = [x for x in by_card[r["card_number"]] if x["t"] > r["t"]]
        other = [x["device_id"] for x in later if x["device_id"] not in user.devices]
        if other and other[0] != r["device_id"]:
            assert other[0] in replaced
        kept += bool(other) and other[0] == r["device_id"]
    assert kept >= 10


# ---- no rule trips on them ---------------------------------------------------------------------


def test_behavioural_fraud_and_lookalikes_trip_no_threshold_rule(stream, records) -> None:
    """The independent rule checker over the whole stream: on a card that had a behavioural
    scenario or a look-alike, every alert is explained by another scenario of that card."""
    by_id = {r["transaction_id"]: r for r in records}
    new_cards: set[str] = set()
    expected: set[tuple[str, str]] = set()
    for t in _truths(stream):
        if t["kind"] == "invalid":
            continue
        first = by_id[t["transaction_ids"][0]]
        if t.get("scenario_type") in BEHAVIOURAL or t["kind"] == "lookalike":
            new_cards.add(first["card_number"])
        else:
            entity = first["device_id"] if t["entity_type"] == "device" else first["card_number"]
            expected.add((t["expected_rule"], entity))
    assert len(new_cards) > 100
    alerts = rule_checker.check_rules(records)
    wrong = [a for a in alerts if a[1] in new_cards and (a[0], a[1]) not in expected]
    assert wrong == []
    # and the old scenarios still trip theirs
    fired = {(rule, entity) for rule, entity, _ in alerts}
    assert expected <= fired


def test_the_heuristic_risk_score_misses_them(stream, records) -> None:
    """Version 0 of RISK_SCORE (amount, night, risky category, online, round amount) cannot
    catch them: they need the card's history."""
    by_id = {r["transaction_id"]: r for r in records}
    ids = [
        i
        for t in _truths(stream)
        if t.get("scenario_type") in BEHAVIOURAL
        for i in t["transaction_ids"]
    ]
    txns = [by_id[i] for i in ids]
    scores = risk_scores(
        [r["amount"] for r in txns],
        [r["channel"] for r in txns],
        [r["merchant_category"] for r in txns],
        [r["currency"] for r in txns],
        [(r["t"] // HOUR) % 24 for r in txns],
    )
    assert len(txns) > 50 and max(scores) < Rules().risk_score.threshold


# ---- truth, rates, determinism -----------------------------------------------------------------


def test_lookalike_truth_records(stream, small_population) -> None:
    cards = {u.user_id: u.card_number for u in small_population.users}
    emitted = {e.transaction_id: e for e in stream if e.transaction_id}
    looks = [t for t in _truths(stream) if t["kind"] == "lookalike"]
    assert {t["lookalike_type"] for t in looks} == set(LOOKALIKES)
    for t in looks:
        assert set(t) == {
            "kind", "lookalike_id", "lookalike_type", "entity_type", "entity_id", "card_last4",
            "user_id", "transaction_ids", "first_event_time", "last_event_time", "complete",
        }  # fmt: skip
        assert t["lookalike_id"].startswith("la_") and t["entity_type"] == "card"
        assert t["entity_id"] == card_token(cards[t["user_id"]], TOKEN_KEY)
        assert t["card_last4"] == card_last4(cards[t["user_id"]])
        (txn_id,) = t["transaction_ids"]
        ev = emitted[txn_id]
        assert ev.kind == "lookalike" and ev.label == t["lookalike_type"]
        assert t["first_event_time"] == t["last_event_time"] == json.loads(ev.value)["event_time"]
        assert t["complete"] is True
    looked = {i for t in looks for i in t["transaction_ids"]}
    assert looked == {e.transaction_id for e in stream if e.kind == "lookalike"}
    behavioural = [t for t in _truths(stream) if t.get("scenario_type") in BEHAVIOURAL]
    assert {t["expected_rule"] for t in behavioural} == {"RISK_SCORE"}


def test_lookalike_rate_is_respected(stream, population) -> None:
    """After the first hour (cards need a history) the share is about the rate."""
    after = [e for e in stream if e.event_time_ms >= START_MS + HOUR]
    share = sum(e.kind == "lookalike" for e in after) / len(after)
    assert 0.015 < share < 0.025, share
    from tests.producer.conftest import make_stream

    none = make_stream(population, 5_000, lookalike_rate=0.0)
    assert not any(e.kind == "lookalike" for e in none)


def test_default_rates_give_a_few_lookalikes_per_behavioural_scenario() -> None:
    options = GeneratorOptions()
    events = generate(
        build_population(3, 2_000),
        GeneratorOptions(seed=3, start_ms=START_MS, events_per_second=3.0, horizon_ms=10**15),
        TOKEN_KEY,
        60_000,
    )
    kinds = Counter(
        "lookalike" if t["kind"] == "lookalike" else "behavioural"
        for t in (t for e in events for t in e.truth)
        if t["kind"] == "lookalike" or t.get("scenario_type") in BEHAVIOURAL
    )
    assert options.lookalike_rate == 0.003
    assert 2 <= kinds["lookalike"] / kinds["behavioural"] <= 8, kinds


def test_same_seed_same_stream_and_labelled_stream_is_the_generator() -> None:
    """2 h of the module's stream, with invalid records: twice the same bytes and truth, and
    `labelled_stream` gives its valid transactions parsed and every truth record."""
    options = {**STREAM, "bad_records": 0.01, "out_of_order_ms": 2000}
    streams = [
        generate(
            build_population(11, 2_000),
            GeneratorOptions(start_ms=START_MS, **options),  # type: ignore[arg-type]
            TOKEN_KEY,
            14_400,
        )
        for _ in range(2)
    ]
    a, b = ([(e.value, e.truth) for e in s] for s in streams)
    assert a == b
    assert {e.kind for e in streams[0]} == {"normal", "fraud", "lookalike", "invalid"}
    events, truth = labelled_stream(
        14_400, STREAM["seed"], TOKEN_KEY, population=2_000, start_ms=START_MS,
        **{k: v for k, v in options.items() if k != "seed"},
    )  # fmt: skip
    assert events == [json.loads(e.value) for e in streams[0] if e.kind != "invalid"]
    assert truth == _truths(streams[0])
    assert any(t["kind"] == "invalid" for t in truth)


def test_behavioural_scenarios_need_hours() -> None:
    """They start only when they can end before a known end (`take`)."""
    assert SCENARIOS["account_takeover"].max_span_ms > 2 * HOUR
    assert SCENARIOS["account_drain"].max_span_ms == 2 * HOUR
