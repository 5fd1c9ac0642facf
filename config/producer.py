"""Defaults of the transaction generator (section `producer`); CLI flags override them.

`rate` is the default send rate (events/s). With the default population every card rests at
least 2.5 min between purchases, which sustains about population / 150 s events per second of
event time (about 66/s for 10,000 cards) without normal traffic tripping VELOCITY; above that
`fraudctl produce` warns. Simulated clocks (`--start-time`, `--speedup`) stretch event time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.validators import PositiveInt

# the fraud scenarios the generator labels (producer/scenarios.py builds each; a test keeps the
# two equal) -> the rule expected to catch it: its ground truth's `expected_rule`, and what
# `fraudctl evaluate` scores each rule's alerts against
SCENARIO_RULES: dict[str, str] = {
    "velocity_burst": "VELOCITY",
    "device_farm": "DEVICE_SHARING",
    "geo_hop": "GEO_HOP",
    "impossible_travel": "IMPOSSIBLE_TRAVEL",
    "card_testing": "CARD_TESTING",
    "high_value": "HIGH_VALUE",
    # behavioural: no threshold rule catches them, a model of the card's history may
    "account_takeover": "RISK_SCORE",
    "account_drain": "RISK_SCORE",
}
SCENARIO_NAMES = tuple(SCENARIO_RULES)
# the rule the legit look-alikes (producer/lookalikes.py) test: `fraudctl evaluate` reports
# how many of them its alerts flag
LOOKALIKE_RULE = "RISK_SCORE"


class ProducerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 42
    population: PositiveInt = 10_000
    rate: float = Field(default=50.0, gt=0)
    speedup: float = Field(default=1.0, gt=0)
    fraud_rate: float = Field(default=0.01, ge=0, lt=1)
    # share of events that are legit look-alikes of the behavioural (RISK_SCORE) fraud
    # (producer/lookalikes.py); at the defaults 3-4 look-alikes per behavioural scenario
    lookalike_rate: float = Field(default=0.003, ge=0, le=0.5)
    bad_records: float = Field(default=0.0, ge=0, le=0.5)
    out_of_order_ms: int = Field(default=0, ge=0, le=60_000)
    scenario_weights: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(SCENARIO_NAMES, 1.0)
    )
    # Kafka client, chosen by benchmarks/producer_throughput.py (see README)
    client: Literal["confluent", "kafka-python"] = "confluent"
    truth_to_topic: bool = True  # also send ground truth to kafka.topics.truth
    linger_ms: int = Field(default=20, ge=0, le=1000)
    batch_size: PositiveInt = 1_000_000
    compression: Literal["lz4", "zstd", "gzip", "snappy", "none"] = "lz4"
    delivery_timeout_ms: int = Field(default=30_000, ge=1000)
    connect_timeout_s: float = Field(default=8.0, gt=0, le=120)

    @field_validator("scenario_weights")
    @classmethod
    def _known_scenarios(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SCENARIO_NAMES))
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIO_NAMES)}")
        negative = sorted(k for k, w in value.items() if w < 0)
        if negative:
            raise ValueError(f"weights must be >= 0: {negative}")
        return value

    @model_validator(mode="after")
    def _rates_leave_normal_traffic(self) -> ProducerSettings:
        if self.fraud_rate + self.lookalike_rate + self.bad_records >= 1:
            raise ValueError(
                "fraud_rate + lookalike_rate + bad_records must stay under 1 "
                f"(got {self.fraud_rate} + {self.lookalike_rate} + {self.bad_records})"
            )
        return self
