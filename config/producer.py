"""Defaults of the transaction generator (section `producer`); CLI flags override them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from config.validators import PositiveInt


class ProducerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 42
    population: PositiveInt = 10_000
    rate: float = Field(default=1000.0, gt=0)
    fraud_rate: float = Field(default=0.01, ge=0, le=1)
    bad_records: float = Field(default=0.0, ge=0, le=1)
    out_of_order_ms: int = Field(default=0, ge=0)
    scenario_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "velocity_burst": 1.0,
            "device_farm": 1.0,
            "geo_hop": 1.0,
            "impossible_travel": 1.0,
            "card_testing": 1.0,
            "high_value": 1.0,
        }
    )
