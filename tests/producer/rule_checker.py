"""A small, independent pure-Python version of the detection rules of docs/contract.md (defaults),
used to measure what the generated traffic would trip. It parses the emitted bytes, not generator
state, and has its own haversine."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from datetime import datetime
from typing import Any

MIN = 60_000


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * r * math.asin(math.sqrt(a))


def parse_ms(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def is_valid(value: bytes) -> bool:
    """docs/contract.md's validity test for one `transactions` record."""
    try:
        rec = json.loads(value)
    except ValueError:
        return False
    if not isinstance(rec, dict):
        return False
    if any(k not in rec for k in ("transaction_id", "card_number", "amount", "event_time")):
        return False
    if "\u0000" in str(rec["transaction_id"]):
        return False
    amount = rec["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return False
    if not math.isfinite(amount) or amount <= 0:
        return False
    try:
        parse_ms(rec["event_time"]) if isinstance(rec["event_time"], str) else None
    except (ValueError, TypeError):
        return False
    if not isinstance(rec["event_time"], str | int):
        return False
    loc = rec.get("location") or {}
    lat, lon = loc.get("lat"), loc.get("lon")
    if lat is not None and not -90 <= lat <= 90:
        return False
    return not (lon is not None and not -180 <= lon <= 180)


def parse_valid(values: list[bytes]) -> list[dict[str, Any]]:
    """Valid records with `t` (event time ms) added."""
    out = []
    for v in values:
        if is_valid(v):
            rec = json.loads(v)
            rec["t"] = parse_ms(rec["event_time"])
            out.append(rec)
    return out


def _hop_windows_over(times: list[int], threshold: int) -> set[int]:
    """Starts of 5-min windows sliding by 1 min holding more than `threshold` of `times`."""
    hits = set()
    times = sorted(times)
    for i in range(len(times) - threshold):
        j = i + threshold
        lo, hi = times[i], times[j]
        # windows [s, s + 5 min) with s a whole minute, s <= lo and hi < s + 5 min
        s = (lo // MIN) * MIN
        while s > hi - 5 * MIN:
            hits.add(s)
            s -= MIN
    return hits


def check_rules(records: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """Alerts as (rule, entity, event time ms); entity is a card number or a device id.
    Windowed rules give one alert per entity per window start (no cooldown)."""
    alerts: list[tuple[str, str, int]] = []
    by_card: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_card[r["card_number"]].append(r)
        by_device[r["device_id"]].append(r)
        if r["amount"] > 500.0:
            alerts.append(("HIGH_VALUE", r["card_number"], r["t"]))
    for card, txns in by_card.items():
        txns.sort(key=lambda r: r["t"])
        for s in _hop_windows_over([r["t"] for r in txns], 3):
            alerts.append(("VELOCITY", card, s))
        for a, b in itertools.pairwise(txns):
            gap = b["t"] - a["t"]
            la, lb = a["location"], b["location"]
            if la["city"] != lb["city"] and gap <= 10 * MIN:
                alerts.append(("GEO_HOP", card, b["t"]))
            d = haversine_km(la["lat"], la["lon"], lb["lat"], lb["lon"])
            hours = max(gap, 1) / 3_600_000
            if d > 100 and d / hours > 900:
                alerts.append(("IMPOSSIBLE_TRAVEL", card, b["t"]))
        probes: list[dict[str, Any]] = []
        for r in txns:
            if r["amount"] < 2.0:
                probes.append(r)
                continue
            if r["amount"] > 200.0 and len(probes) >= 3 and r["t"] - probes[-3]["t"] <= 10 * MIN:
                alerts.append(("CARD_TESTING", card, r["t"]))
            probes = []
    for device, txns in by_device.items():
        users_by_time = sorted((r["t"], r["user_id"]) for r in txns)
        starts = {(t // MIN) * MIN - k * MIN for t, _ in users_by_time for k in range(5)}
        for s in sorted(starts):
            users = {u for t, u in users_by_time if s <= t < s + 5 * MIN}
            if len(users) > 3:
                alerts.append(("DEVICE_SHARING", device, s))
    return alerts
