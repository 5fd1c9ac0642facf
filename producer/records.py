"""Encoding of one transaction exactly as the input contract (docs/contract.md) says, fast and
deterministic."""

from __future__ import annotations

import json

from fraudctl.times import iso_ms
from producer.places import CITIES

_CITY_JSON: tuple[str, ...] = tuple(json.dumps(c.name) for c in CITIES)
_STATE_JSON: tuple[str, ...] = tuple(json.dumps(c.state) for c in CITIES)
_TXN_FORMAT = (
    '{"transaction_id":"%s","card_number":"%s","user_id":"%s","device_id":"%s",'
    '"amount":%r,"currency":"USD","merchant":%s,"merchant_category":"%s","channel":"%s",'
    '"location":{"city":%s,"state":%s,"lat":%r,"lon":%r},"event_time":"%s"}'
)


def encode_txn(
    transaction_id: str,
    card_number: str,
    user_id: str,
    device_id: str,
    amount: float,
    merchant_json: str,
    category: str,
    channel: str,
    city: int,
    lat: float,
    lon: float,
    event_time_ms: int,
) -> bytes:
    """The JSON bytes of one valid transaction (`merchant_json` is already a JSON string)."""
    return (
        _TXN_FORMAT
        % (
            transaction_id,
            card_number,
            user_id,
            device_id,
            amount,
            merchant_json,
            category,
            channel,
            _CITY_JSON[city],
            _STATE_JSON[city],
            lat,
            lon,
            iso_ms(event_time_ms),
        )
    ).encode()
