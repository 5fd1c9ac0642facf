"""Great-circle distance and implied speed (the same formula the SQL macro uses)."""

from __future__ import annotations

import math

import pytest

from udfs.geo import great_circle_km, implied_speed_kmh


def test_known_distances():
    assert great_circle_km(40.7128, -74.0060, 34.0522, -118.2437) == pytest.approx(3936, abs=5)
    assert great_circle_km(37.8044, -122.2712, 37.7749, -122.4194) == pytest.approx(13.4, abs=0.5)
    assert great_circle_km(51.5, -0.12, 51.5, -0.12) == 0.0


def test_antipodes_do_not_break_asin():
    assert great_circle_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371.0088)


def test_symmetric():
    assert great_circle_km(10, 20, -30, 40) == pytest.approx(great_circle_km(-30, 40, 10, 20))


def test_implied_speed():
    assert implied_speed_kmh(3936, 3600) == pytest.approx(3936)
    assert implied_speed_kmh(100, 0) == math.inf
    assert implied_speed_kmh(0, 0) == 0.0
