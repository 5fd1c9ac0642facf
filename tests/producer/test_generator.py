"""The pure generator: determinism, the input contract, scenario shapes, rule trips, truth."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict

import pytest

from producer.generator import Event
from producer.invalid import INVALID_KINDS
from producer.places import CITIES, FAR_PARTNERS, HOP_PARTNERS, NEARBY, haversine_km
from producer.population import MAX_NORMAL_AMOUNT, MIN_AMOUNT, build_population, luhn_valid
from producer.scenarios import SCENARIOS
from tests.producer import rule_checker
from tests.producer.conftest import TOKEN_KEY, make_stream
from udfs.card_token import card_last4, card_token

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CONTRACT_FIELDS = [
    "transaction_id",
    "card_number",
    "user_id",
    "device_id",
    "amount",
    "currency",
    "merchant",
    "merchant_category",
    "channel",
    "location",
    "event_time",
]
MIN = 60_000


def _truths(events: list[Event]) -> list[dict]:
    return [t for e in events for t in e.truth]


def _fitting(minutes: float) -> set[str]:
    """The scenario types short enough to start in a run of `minutes` of event time (account
    takeover's journey takes hours, account drain's purchases up to 2 h)."""
    return {n for n, s in SCENARIOS.items() if s.max_span_ms < minutes * MIN}


def _by_txn(events: list[Event]) -> dict[str, dict]:
    out = {}
    for e in events:
        if e.kind != "invalid":
            rec = json.loads(e.value)
            rec["t"] = rule_checker.parse_ms(rec["event_time"])
            out[rec["transaction_id"]] = rec
    return out


def _serialise(events: list[Event]) -> bytes:
    return b"".join(
        (e.key or b"") + b"\t" + e.value + b"\t" + json.dumps(e.truth).encode() + b"\n"
        for e in events
    )


# ---- determinism -------------------------------------------------------------------------------


def test_same_seed_and_start_give_byte_identical_output(population) -> None:
    opts = {"fraud_rate": 0.1, "bad_records": 0.05, "out_of_order_ms": 3000}
    a = make_stream(population, 5_000, **opts)
    b = make_stream(build_population(7, 10_000), 5_000, **opts)
    assert _serialise(a) == _serialise(b)
    assert len(a) >= 5_000


def test_other_seed_or_start_changes_output(population) -> None:
    from producer.generator import GeneratorOptions, generate
    from tests.producer.conftest import START_MS

    base = _serialise(make_stream(population, 500))
    other_start = generate(population, GeneratorOptions(seed=7, start_ms=START_MS + 1), "k", 500)
    other_seed = generate(build_population(8, 10_000), GeneratorOptions(seed=8), "k", 500)
    assert _serialise(other_start) != base
    assert _serialise(other_seed) != base


# ---- the input contract ------------------------------------------------------------------------


def test_valid_records_follow_the_contract(fraud_stream) -> None:
    seen_ids = set()
    for e in fraud_stream:
        if e.kind == "invalid":
            continue
        rec = json.loads(e.value)
        assert list(rec) == CONTRACT_FIELDS
        assert list(rec["location"]) == ["city", "state", "lat", "lon"]
        assert e.key == rec["user_id"].encode()
        assert re.fullmatch(r"[0-9a-f]{32}", rec["transaction_id"])
        assert rec["transaction_id"] not in seen_ids
        seen_ids.add(rec["transaction_id"])
        assert len(rec["card_number"]) == 16 and luhn_valid(rec["card_number"])
        assert isinstance(rec["amount"], float) and rec["amount"] > 0
        assert rec["currency"] == "USD"
        assert ISO_MS.fullmatch(rec["event_time"])
        assert -90 <= rec["location"]["lat"] <= 90 and -180 <= rec["location"]["lon"] <= 180
        assert rule_checker.is_valid(e.value)


def test_places_are_real_and_have_travel_partners() -> None:
    names = [(c.name, c.state) for c in CITIES]
    assert 60 <= len(CITIES) <= 120 and len(set(names)) == len(names)
    assert len({c.name for c in CITIES}) == len(CITIES), "city names must be unique"
    ny = next(c for c in CITIES if c.name == "New York")
    la = next(c for c in CITIES if c.name == "Los Angeles")
    assert 3900 < haversine_km(ny.lat, ny.lon, la.lat, la.lon) < 4000  # known ~3,936 km
    assert all(FAR_PARTNERS[i] for i in range(len(CITIES)))
    assert sum(1 for p in HOP_PARTNERS if p) >= len(CITIES) // 2
    for i, near in enumerate(NEARBY):
        for j in near:
            a, b = CITIES[i], CITIES[j]
            assert haversine_km(a.lat, a.lon, b.lat, b.lon) < 100


def test_population_is_deterministic_and_plausible(population) -> None:
    again = build_population(7, 10_000)
    assert [u.card_number for u in population.users] == [u.card_number for u in again.users]
    assert len({u.card_number for u in population.users}) == 10_000
    devices = [d for u in population.users for d in u.devices]
    assert len(set(devices)) == len(devices), "a normal device belongs to one user"
    assert {len(u.devices) for u in population.users} == {1, 2}
    homes = Counter(CITIES[u.home].name for u in population.users)
    assert homes.most_common(1)[0][0] == "New York"  # weighted by population
    assert len(homes) > 60


# ---- normal traffic ----------------------------------------------------------------------------


def test_normal_amounts_are_capped_and_long_tailed(normal_stream) -> None:
    amounts = [json.loads(e.value)["amount"] for e in normal_stream]
    assert min(amounts) >= MIN_AMOUNT and max(amounts) <= MAX_NORMAL_AMOUNT
    amounts.sort()
    median = amounts[len(amounts) // 2]
    p99 = amounts[int(len(amounts) * 0.99)]
    assert 15 < median < 80, "most purchases are small"
    assert p99 > 4 * median, "with a long tail"


def test_normal_traffic_is_mostly_near_home(population, normal_stream) -> None:
    home = {u.user_id: CITIES[u.home].name for u in population.users}
    recs = [json.loads(e.value) for e in normal_stream]
    at_home = sum(1 for r in recs if r["location"]["city"] == home[r["user_id"]])
    assert 0.85 < at_home / len(recs) < 1.0, "mostly at home, sometimes a nearby city"


def test_normal_traffic_rarely_trips_the_rules(normal_stream) -> None:
    """50k normal events at the default 50/s and 10k cards: the rules must stay (almost) quiet."""
    assert all(e.kind == "normal" for e in normal_stream)
    records = rule_checker.parse_valid([e.value for e in normal_stream])
    assert len(records) == len(normal_stream) >= 50_000
    alerts = rule_checker.check_rules(records)
    by_rule = Counter(rule for rule, _, _ in alerts)
    assert len(alerts) <= 0.0005 * len(records), by_rule  # at most 25 in 50k
    # and the per-card pace behind VELOCITY: at most 3 purchases in any 5 minutes
    by_card = defaultdict(list)
    for r in records:
        by_card[r["card_number"]].append(r["t"])
    worst = max(sum(1 for u in ts if t <= u < t + 5 * MIN) for ts in by_card.values() for t in ts)
    assert worst <= 3


def test_normal_travel_stays_far_below_900_kmh(normal_stream) -> None:
    records = rule_checker.parse_valid([e.value for e in normal_stream])
    by_card = defaultdict(list)
    for r in records:
        by_card[r["card_number"]].append(r)
    fastest = 0.0
    for txns in by_card.values():
        txns.sort(key=lambda r: r["t"])
        for a, b in itertools.pairwise(txns):
            la, lb = a["location"], b["location"]
            if la["city"] != lb["city"]:
                d = haversine_km(la["lat"], la["lon"], lb["lat"], lb["lon"])
                fastest = max(fastest, d / ((b["t"] - a["t"]) / 3_600_000))
    assert fastest < 200, f"fastest trip between cities {fastest:.0f} km/h"


def test_overloaded_population_is_reported(population) -> None:
    from producer.generator import GeneratorOptions, TransactionGenerator

    gen = TransactionGenerator(
        build_population(1, 100), GeneratorOptions(events_per_second=50, fraud_rate=0), "k"
    )
    for _ in range(5_000):
        gen.next_event()
    assert gen.capacity_eps() < 1
    assert gen.overcapacity > 0


# ---- fraud scenarios ---------------------------------------------------------------------------


def _scenario_txns(fraud_stream, scenario_type: str) -> list[tuple[dict, list[dict]]]:
    txns = _by_txn(fraud_stream)
    out = []
    for t in _truths(fraud_stream):
        if t["kind"] == "scenario" and t["scenario_type"] == scenario_type:
            out.append((t, sorted((txns[i] for i in t["transaction_ids"]), key=lambda r: r["t"])))
    assert len(out) >= 20, f"too few {scenario_type} scenarios to judge"
    return out


def test_velocity_burst_shape(fraud_stream) -> None:
    for truth, txns in _scenario_txns(fraud_stream, "velocity_burst"):
        assert truth["expected_rule"] == "VELOCITY" and truth["entity_type"] == "card"
        assert len(txns) >= 5
        assert len({r["card_number"] for r in txns}) == 1
        assert txns[-1]["t"] - txns[0]["t"] <= 2 * MIN
        assert len({r["location"]["city"] for r in txns}) == 1
        assert all(2.0 < r["amount"] <= 500 for r in txns)


def test_device_farm_shape(fraud_stream) -> None:
    for truth, txns in _scenario_txns(fraud_stream, "device_farm"):
        assert truth["expected_rule"] == "DEVICE_SHARING" and truth["entity_type"] == "device"
        assert {r["device_id"] for r in txns} == {truth["entity_id"]}
        assert len({r["user_id"] for r in txns}) >= 5
        assert len({r["card_number"] for r in txns}) >= 5
        assert txns[-1]["t"] - txns[0]["t"] <= 2 * MIN


def test_geo_hop_shape(fraud_stream) -> None:
    for truth, txns in _scenario_txns(fraud_stream, "geo_hop"):
        assert truth["expected_rule"] == "GEO_HOP"
        a, b = txns
        assert a["location"]["city"] != b["location"]["city"]
        gap_h = (b["t"] - a["t"]) / 3_600_000
        assert gap_h * 60 < 10, "within GEO_HOP's 10 minutes"
        d = haversine_km(
            a["location"]["lat"], a["location"]["lon"], b["location"]["lat"], b["location"]["lon"]
        )
        assert 25 < d < 90
        assert d / gap_h < 900, "slow enough not to be impossible travel"


def test_impossible_travel_shape(fraud_stream) -> None:
    for truth, txns in _scenario_txns(fraud_stream, "impossible_travel"):
        assert truth["expected_rule"] == "IMPOSSIBLE_TRAVEL"
        a, b = txns
        gap_h = (b["t"] - a["t"]) / 3_600_000
        d = haversine_km(
            a["location"]["lat"], a["location"]["lon"], b["location"]["lat"], b["location"]["lon"]
        )
        assert d > 1500
        assert gap_h <= 0.5
        assert d / gap_h > 900 * 2, "implies far more than 900 km/h"


def test_card_testing_shape(fraud_stream) -> None:
    for truth, txns in _scenario_txns(fraud_stream, "card_testing"):
        assert truth["expected_rule"] == "CARD_TESTING"
        *probes, charge = txns
        assert len(probes) >= 3
        assert all(r["amount"] < 2.0 for r in probes)
        assert charge["amount"] > 200.0 and charge["amount"] <= 500.0
        assert charge["t"] - probes[0]["t"] <= 10 * MIN


def test_high_value_shape(fraud_stream) -> None:
    for truth, txns in _scenario_txns(fraud_stream, "high_value"):
        assert truth["expected_rule"] == "HIGH_VALUE"
        assert [r["amount"] > 500.0 for r in txns] == [True]


def test_every_scenario_trips_its_rule_and_nothing_else_trips(fraud_stream) -> None:
    """Run the independent rule checker over the mixed stream: recall and precision."""
    records = rule_checker.parse_valid([e.value for e in fraud_stream])
    alerts = rule_checker.check_rules(records)
    txns = _by_txn(fraud_stream)
    expected: dict[tuple[str, str], str] = {}
    for t in _truths(fraud_stream):
        if t["kind"] != "scenario":
            continue
        first = txns[t["transaction_ids"][0]]
        entity = first["device_id"] if t["entity_type"] == "device" else first["card_number"]
        expected[(t["expected_rule"], entity)] = t["scenario_id"]
    fired = {(rule, entity) for rule, entity, _ in alerts}
    missed = set(expected) - fired
    assert not missed, f"scenarios not detected: {sorted(missed)[:5]}"
    unexplained = [a for a in alerts if (a[0], a[1]) not in expected]
    assert len(unexplained) <= 0.001 * len(records), Counter(a[0] for a in unexplained)


def test_fraud_rate_is_respected(population) -> None:
    events = make_stream(population, 20_000, fraud_rate=0.05, events_per_second=10.0)
    share = sum(1 for e in events if e.kind == "fraud") / len(events)
    assert 0.035 < share < 0.065
    types = Counter(t["scenario_type"] for t in _truths(events) if t["kind"] == "scenario")
    assert set(types) == _fitting(33)


def test_scenario_weights_select_types(population) -> None:
    weights = dict.fromkeys(SCENARIOS, 0.0) | {"high_value": 1.0}
    events = make_stream(population, 5_000, fraud_rate=0.05, scenario_weights=weights)
    assert {t["scenario_type"] for t in _truths(events)} == {"high_value"}


# ---- ground truth ------------------------------------------------------------------------------


def test_truth_matches_what_was_emitted(fraud_stream, population) -> None:
    cards = {u.user_id: u.card_number for u in population.users}
    emitted_fraud = {e.transaction_id for e in fraud_stream if e.kind == "fraud"}
    emitted_order = {e.transaction_id: i for i, e in enumerate(fraud_stream) if e.transaction_id}
    truth_ids = []
    for i, e in enumerate(fraud_stream):
        for t in e.truth:
            if t["kind"] != "scenario":
                continue
            assert set(t) >= {
                "scenario_id", "scenario_type", "expected_rule", "entity_type", "entity_id",
                "card_last4", "user_id", "transaction_ids",
            }  # fmt: skip
            assert all(emitted_order[x] <= i for x in t["transaction_ids"]), "truth after its txns"
            truth_ids.extend(t["transaction_ids"])
            if t["entity_type"] == "card":
                card = cards[t["user_id"]]
                assert t["entity_id"] == card_token(card, TOKEN_KEY)
                assert t["card_last4"] == card_last4(card)
    assert len(truth_ids) == len(set(truth_ids))
    assert set(truth_ids) == emitted_fraud
    ids = [t["scenario_id"] for t in _truths(fraud_stream) if t["kind"] == "scenario"]
    assert len(ids) == len(set(ids))


def test_truth_never_holds_a_card_number(fraud_stream, population) -> None:
    text = json.dumps(_truths(fraud_stream))
    cards = {u.card_number for u in population.users}
    assert not cards & set(re.findall(r"\d{16}", text))
    assert "************" in text  # previews of invalid records are masked


def test_every_invalid_kind_appears_and_is_invalid(fraud_stream) -> None:
    invalid = [e for e in fraud_stream if e.kind == "invalid"]
    truths = [t for e in invalid for t in e.truth]
    assert len(truths) == len(invalid)
    assert {t["invalid_kind"] for t in truths} == set(INVALID_KINDS)
    missing = {t["expected_reason"] for t in truths if t["invalid_kind"] == "missing_field"}
    assert missing == {
        f"missing_field:{f}" for f in ("transaction_id", "card_number", "amount", "event_time")
    }
    for e, t in zip(invalid, truths, strict=True):
        assert not rule_checker.is_valid(e.value), (t["invalid_kind"], e.value[:80])
        assert e.label == t["invalid_kind"]
        assert b"\n" not in e.value
    valid = [e for e in fraud_stream if e.kind != "invalid"]
    assert all(rule_checker.is_valid(e.value) for e in valid)


@pytest.mark.parametrize("kind", sorted(INVALID_KINDS))
def test_invalid_kind_has_its_defect(fraud_stream, kind: str) -> None:
    records = [e.value for e in fraud_stream if e.kind == "invalid" and e.label == kind]
    assert records
    for value in records:
        if kind == "not_json":
            with pytest.raises(ValueError):
                json.loads(value)
            continue
        rec = json.loads(value)
        if kind == "not_object":
            assert not isinstance(rec, dict)
        elif kind == "missing_field":
            assert (
                sum(f not in rec for f in ("transaction_id", "card_number", "amount", "event_time"))
                == 1
            )
        elif kind == "wrong_type":
            assert not isinstance(rec["amount"], int | float) or isinstance(rec["amount"], bool)
        elif kind == "non_finite":
            assert rec["amount"] == float("inf")
        elif kind == "zero_amount":
            assert rec["amount"] == 0
        elif kind == "negative_amount":
            assert rec["amount"] < 0
        elif kind == "bad_time":
            with pytest.raises(ValueError):
                rule_checker.parse_ms(rec["event_time"])
        elif kind == "bad_transaction_id":
            assert "\u0000" in rec["transaction_id"]
        elif kind == "bad_location":
            loc = rec["location"]
            assert not (-90 <= loc["lat"] <= 90 and -180 <= loc["lon"] <= 180)


def test_out_of_order_jitter_is_bounded(population) -> None:
    events = make_stream(population, 3_000, out_of_order_ms=2_000)
    times = [e.event_time_ms for e in events if e.kind == "normal"]
    back = [a - b for a, b in itertools.pairwise(times) if b < a]
    assert back, "some events arrive out of order"
    assert max(back) <= 2_000 + 100


# ---- ends of runs ------------------------------------------------------------------------------


def test_known_end_starts_only_scenarios_that_finish(population) -> None:
    from producer.generator import GeneratorOptions, TransactionGenerator
    from tests.producer.conftest import START_MS

    gen = TransactionGenerator(
        population,
        GeneratorOptions(seed=7, start_ms=START_MS, fraud_rate=0.2, events_per_second=10.0),
        TOKEN_KEY,
    )
    events = list(gen.take(20_000))  # 33 min of event time
    end = gen.slot_time(20_000)
    assert len(events) == 20_000, "nothing left to drain"
    assert max(e.event_time_ms for e in events) < end
    done = Counter(t["scenario_type"] for t in _truths(events) if t["kind"] == "scenario")
    assert set(done) == _fitting(33), "long scenarios still run, just not past the end"
    short = list(gen.take(0)) + list(
        TransactionGenerator(
            population, GeneratorOptions(seed=7, start_ms=START_MS, fraud_rate=0.2), TOKEN_KEY
        ).take(3_000)  # 1 min: only the short scenarios fit
    )
    kinds = {t["scenario_type"] for t in _truths(short) if t["kind"] == "scenario"}
    assert kinds and kinds <= {"velocity_burst", "device_farm", "high_value"}
    assert all(t["complete"] for t in _truths(events) if t["kind"] == "scenario")


def test_truncate_labels_unfinished_scenarios(population) -> None:
    from producer.generator import GeneratorOptions, TransactionGenerator
    from tests.producer.conftest import START_MS

    gen = TransactionGenerator(
        population, GeneratorOptions(seed=7, start_ms=START_MS, fraud_rate=0.2), TOKEN_KEY
    )
    sent = [gen.next_event() for _ in range(5_000)]
    assert gen.in_flight > 0
    partial = gen.truncate()
    assert gen.in_flight == 0 and list(gen.drain()) == []
    assert partial and all(not t["complete"] for t in partial)
    sent_ids = {e.transaction_id for e in sent}
    for t in partial:
        assert set(t["transaction_ids"]) <= sent_ids
        assert 0 < len(t["transaction_ids"]) < t["planned_transactions"]


def test_config_knows_every_scenario() -> None:
    from config.producer import SCENARIO_NAMES

    assert tuple(SCENARIOS) == SCENARIO_NAMES
