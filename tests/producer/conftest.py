"""Generated streams shared by the producer's unit tests (built once per module)."""

from __future__ import annotations

import pytest

from producer.generator import Event, GeneratorOptions, generate
from producer.population import Population, build_population

TOKEN_KEY = "unit-test-key"
START_MS = 1_795_300_000_000  # 2026-11-22T...Z


@pytest.fixture(scope="session")
def population() -> Population:
    return build_population(7, 10_000)


def make_stream(population: Population, count: int, **opts: object) -> list[Event]:
    options = GeneratorOptions(seed=7, start_ms=START_MS, **opts)  # type: ignore[arg-type]
    return generate(population, options, TOKEN_KEY, count)


@pytest.fixture(scope="session")
def fraud_stream(population: Population) -> list[Event]:
    """40k slots (27 min of event time) with a high fraud rate and some invalid records."""
    return make_stream(
        population, 40_000, fraud_rate=0.15, bad_records=0.01, events_per_second=25.0
    )


@pytest.fixture(scope="session")
def normal_stream(population: Population) -> list[Event]:
    """50k slots of normal traffic only, at the default rate of 50 events/s."""
    return make_stream(population, 50_000, fraud_rate=0.0, lookalike_rate=0.0, bad_records=0.0)
