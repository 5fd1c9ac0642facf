"""Invalid records for `--bad-records`: one of every kind docs/contract.md lists, in rotation.

Each kind names the DLQ reason the job is expected to give (`expected_reason`). The truth record
carries a short preview of the payload with the card number masked to its last four digits.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fraudctl.times import iso_ms
from producer.places import CITIES
from producer.population import normal_amount
from udfs.card_token import card_last4

if TYPE_CHECKING:
    from producer.generator import Event, TransactionGenerator

REQUIRED_FIELDS = ("transaction_id", "card_number", "amount", "event_time")
# invalid kind -> expected DLQ reason (missing_field gets ":<field>")
INVALID_KINDS: dict[str, str] = {
    "not_json": "not_json",
    "not_object": "not_object",
    "missing_field": "missing_field",
    "wrong_type": "bad_amount",
    "non_finite": "bad_amount",
    "zero_amount": "nonpositive_amount",
    "negative_amount": "nonpositive_amount",
    "bad_time": "bad_event_time",
    "bad_location": "bad_location",
    "bad_transaction_id": "bad_transaction_id",
}
_KIND_ORDER = tuple(INVALID_KINDS)
PREVIEW_CHARS = 160


def _base(gen: TransactionGenerator, now: int) -> tuple[dict[str, Any], str]:
    rng = gen.rng
    user = gen.pop.users[rng.randrange(len(gen.pop.users))]
    cat = gen.pick_category(user, now)
    city = CITIES[gen.cur_city[user.index]]
    record = {
        "transaction_id": gen.new_txn_id(),
        "card_number": user.card_number,
        "user_id": user.user_id,
        "device_id": user.devices[0],
        "amount": normal_amount(rng, cat),
        "currency": "USD",
        "merchant": json.loads(rng.choice(gen.pop.merchants[cat])),
        "merchant_category": cat,
        "channel": "pos",
        "location": {"city": city.name, "state": city.state, "lat": city.lat, "lon": city.lon},
        "event_time": iso_ms(now),
    }
    return record, user.user_id


def _dumps(record: Any) -> str:
    return json.dumps(record, separators=(",", ":"))


def make_invalid(gen: TransactionGenerator, now: int) -> Event:
    """The next invalid record (kinds rotate, variants are random) with its truth."""
    from producer.generator import Event

    rng = gen.rng
    n = gen.counts["invalid"]
    gen.counts["invalid"] += 1
    kind = _KIND_ORDER[n % len(_KIND_ORDER)]
    variant = (n // len(_KIND_ORDER)) % 4
    record, user_id = _base(gen, now)
    card = record["card_number"]
    txn_id: str | None = record["transaction_id"]
    reason = INVALID_KINDS[kind]
    if kind == "not_json":
        text = _dumps(record)
        text = [text[: len(text) // 2], "transaction " + txn_id, "{'amount': 12.5}", "{]"][variant]
        txn_id = None
    elif kind == "not_object":
        text = _dumps([[record["transaction_id"], 12.5], "a string", 42, None][variant])
        txn_id = None
    elif kind == "missing_field":
        missing = REQUIRED_FIELDS[variant]
        del record[missing]
        reason = f"missing_field:{missing}"
        if missing == "transaction_id":
            txn_id = None
        text = _dumps(record)
    elif kind == "wrong_type":
        record["amount"] = ["abc", True, {"value": 12.5}, [12.5]][variant]
        text = _dumps(record)
    elif kind == "non_finite":
        # 1e999 is valid JSON syntax that overflows a double to infinity
        text = _dumps({**record, "amount": 0.0}).replace('"amount":0.0', '"amount":1e999')
    elif kind in ("zero_amount", "negative_amount"):
        record["amount"] = 0 if kind == "zero_amount" else -round(rng.uniform(0.01, 500.0), 2)
        if kind == "zero_amount" and variant % 2:
            record["amount"] = 0.0
        text = _dumps(record)
    elif kind == "bad_time":
        record["event_time"] = ["not-a-time", "2026-13-45T25:61:00Z", "yesterday", ""][variant]
        text = _dumps(record)
    elif kind == "bad_transaction_id":
        # U+0000 separates the ids in the window rules' state (sql_templates/macros.sql.j2)
        cut = [0, 1, len(txn_id) // 2, len(txn_id)][variant]
        txn_id = record["transaction_id"] = txn_id[:cut] + "\u0000" + txn_id[cut:]
        text = _dumps(record)
    else:  # bad_location
        loc = record["location"]
        if variant % 2:
            loc["lon"] = round(rng.choice((-1, 1)) * rng.uniform(180.5, 400.0), 4)
        else:
            loc["lat"] = round(rng.choice((-1, 1)) * rng.uniform(90.5, 200.0), 4)
        text = _dumps(record)
    preview = text.replace(card, "*" * (len(card) - 4) + card_last4(card))[:PREVIEW_CHARS]
    truth = {
        "kind": "invalid",
        "invalid_kind": kind,
        "expected_reason": reason,
        "transaction_id": txn_id,
        "payload_preview": preview,
    }
    return Event(user_id.encode(), text.encode(), "invalid", kind, now, txn_id, (truth,))
