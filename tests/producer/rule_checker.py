"""A small, independent pure-Python version of the detection rules of docs/contract.md, used to
measure what the generated traffic would trip. It parses the emitted bytes, not generator state,
and has its own haversine; the limits are the rules' config defaults (config/rules.py)."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from config.rules import Rules
from config.validators import duration_ms

RULES = Rules()


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


def _hop_windows_over(times: list[int], threshold: int, window: int, slide: int) -> set[int]:
    """Starts of `window`-long windows sliding by `slide` (ms) holding more than `threshold`
    of `times`."""
    hits = set()
    times = sorted(times)
    for i in range(len(times) - threshold):
        j = i + threshold
        lo, hi = times[i], times[j]
        # windows [s, s + window) with s a whole slide, s <= lo and hi < s + window
        s = (lo // slide) * slide
        while s > hi - window:
            hits.add(s)
            s -= slide
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
        if r["amount"] > float(RULES.high_value.amount_over):
            alerts.append(("HIGH_VALUE", r["card_number"], r["t"]))
    for card, txns in by_card.items():
        txns.sort(key=lambda r: r["t"])
        velocity = RULES.velocity
        window, slide = duration_ms(velocity.window), duration_ms(velocity.slide)
        for s in _hop_windows_over([r["t"] for r in txns], velocity.max_count, window, slide):
            alerts.append(("VELOCITY", card, s))
        for a, b in itertools.pairwise(txns):
            gap = b["t"] - a["t"]
            la, lb = a["location"], b["location"]
            if la["city"] != lb["city"] and gap <= duration_ms(RULES.geo_hop.within):
                alerts.append(("GEO_HOP", card, b["t"]))
            d = haversine_km(la["lat"], la["lon"], lb["lat"], lb["lon"])
            hours = max(gap, 1) / 3_600_000
            travel = RULES.impossible_travel
            if d > travel.min_distance_km and d / hours > travel.max_speed_kmh:
                alerts.append(("IMPOSSIBLE_TRAVEL", card, b["t"]))
        probes: list[dict[str, Any]] = []
        testing = RULES.card_testing
        for r in txns:
            if r["amount"] < float(testing.probe_under):
                probes.append(r)
                continue
            n = testing.min_probes
            if (
                r["amount"] > float(testing.charge_over)
                and len(probes) >= n
                and r["t"] - probes[-n]["t"] <= duration_ms(testing.within)
            ):
                alerts.append(("CARD_TESTING", card, r["t"]))
            probes = []
    sharing = RULES.device_sharing
    window, slide = duration_ms(sharing.window), duration_ms(sharing.slide)
    for device, txns in by_device.items():
        users_by_time = sorted((r["t"], r["user_id"]) for r in txns)
        starts = {
            (t // slide) * slide - k * slide
            for t, _ in users_by_time
            for k in range(window // slide)
        }
        for s in sorted(starts):
            users = {u for t, u in users_by_time if s <= t < s + window}
            if len(users) > RULES.device_sharing.max_users:
                alerts.append(("DEVICE_SHARING", device, s))
    return alerts
