"""Great-circle distance and implied speed in plain Python: the haversine formula (same Earth
radius) that the IMPOSSIBLE_TRAVEL rule computes in SQL built-ins (sql_templates/macros.sql.j2
`great_circle_km`, on each LAG pair of a card's transactions).

Not a Flink UDF (no wrapper, not registered) and nothing in the job, the producer or the
benchmarks imports it: only tests/udfs/test_geo.py checks it against known distances."""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat = math.radians(lat2 - lat1)
    dlon = math.radians(lon2 - lon1)
    h = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def implied_speed_kmh(distance_km: float, gap_seconds: float) -> float:
    """Speed needed to cover `distance_km` in `gap_seconds`; infinite for a zero gap."""
    if gap_seconds <= 0:
        return math.inf if distance_km > 0 else 0.0
    return distance_km * 3600.0 / gap_seconds
