"""Defaults of the transaction generator (section `producer`); CLI flags override them.

`rate` is the default send rate (events/s). With the default population every card rests at
least 2 min between purchases, which sustains about population / 150 s events per second of
event time (about 66/s for 10,000 cards) without normal traffic tripping VELOCITY; above that
`fraudctl produce` warns. Simulated clocks (`--start-time`, `--speedup`) stretch event time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from config.validators import PositiveInt


class ProducerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 42
    population: PositiveInt = 10_000
    rate: float = Field(default=50.0, gt=0)
    speedup: float = Field(default=1.0, gt=0)
    fraud_rate: float = Field(default=0.01, ge=0, lt=1)
    bad_records: float = Field(default=0.0, ge=0, le=0.5)
    out_of_order_ms: int = Field(default=0, ge=0, le=60_000)
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
    # Kafka client, chosen by benchmarks/producer_throughput.py (see README)
    client: Literal["confluent", "kafka-python"] = "confluent"
    truth_to_topic: bool = True  # also send ground truth to kafka.topics.truth
    linger_ms: int = Field(default=20, ge=0, le=1000)
    batch_size: PositiveInt = 1_000_000
    compression: Literal["lz4", "zstd", "gzip", "snappy", "none"] = "lz4"
    delivery_timeout_ms: int = Field(default=30_000, ge=1000)
    connect_timeout_s: float = Field(default=8.0, gt=0, le=120)
