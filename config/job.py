"""The detection job: event time, cooldown, analytics windows, and the rules (section `job`;
each rule's own settings and declaration are in config/rules.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.rules import Rules, rule_names
from config.validators import Duration, duration_ms


class WindowStatsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    global_window: Duration = "10 s"
    category_window: Duration = "1 min"


class JobSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    watermark_delay: Duration = "5 s"
    source_idle_timeout: Duration = "10 s"
    startup_mode: Literal["earliest-offset", "latest-offset", "group-offsets"] = "earliest-offset"
    consumer_group: str = "fraud-detection-job"
    # at most one alert per rule, entity and cooldown period (event time, periods aligned to
    # the epoch); whole seconds
    alert_cooldown: Duration = "5 min"
    # Non-windowed state expires this long after its last use (processing time): the
    # previous transaction per card (IMPOSSIBLE_TRAVEL compares a transaction with the card's
    # previous one only while that one is remembered, so its reach is min(state_ttl,
    # impossible_travel.within)) and the cooldown periods. State per card or per alert.
    state_ttl: Duration = "24 h"
    # The transaction ids seen are remembered this long (processing time): a re-delivery
    # within it counts once, one after it counts again. State per transaction, about 270 B
    # of heap per id, so rate x horizon: 10 min at 2,000 ev/s is 1.2M ids (some 320 MB), where
    # state_ttl's 24 h would be 173M (45 GB). Producer retries end within the Kafka
    # producer's delivery.timeout.ms (2 min by default).
    dedup_horizon: Duration = "10 min"
    # at-least-once: alerts are readable as soon as they are written (consumers de-duplicate
    # by alert_id); exactly-once: readable at the next checkpoint (Kafka transactions)
    delivery_guarantee: Literal["at-least-once", "exactly-once"] = "at-least-once"
    transactional_id_prefix: str = Field(default="fraud-alerts", pattern=r"^[A-Za-z0-9._-]+$")
    # exactly-once only; must not exceed the broker's transaction.max.timeout.ms
    transaction_timeout: Duration = "15 min"
    # own: the per-transaction rules (HIGH_VALUE, RISK_SCORE) read the input topic a second
    # time, with validation and scoring of their own, so a window fire of the other rules
    # (seconds, every slide) does not hold their alerts back; shared: one read for every rule,
    # less CPU per event (README, Benchmarks: latency)
    per_transaction_read: Literal["own", "shared"] = "own"
    window_stats: WindowStatsSettings = Field(default_factory=WindowStatsSettings)
    rules: Rules = Field(default_factory=Rules)

    def longest_horizon_ms(self) -> int:
        """The longest event-time span over which the job relates two transactions of one
        entity: a rule's `window` or `within`, or the alert cooldown."""
        spans = [self.alert_cooldown]
        for name in rule_names():
            rule = getattr(self.rules, name)
            spans += [getattr(rule, f) for f in ("window", "within") if hasattr(rule, f)]
        return max(duration_ms(span) for span in spans)

    @model_validator(mode="after")
    def _state_horizons_are_sound(self) -> JobSettings:
        cooldown_ms = duration_ms(self.alert_cooldown)
        if cooldown_ms < 1000 or cooldown_ms % 1000:
            raise ValueError(
                f"job.alert_cooldown ({self.alert_cooldown}) must be a whole number of seconds, "
                "at least 1 s"
            )
        if duration_ms(self.dedup_horizon) < 1000:
            raise ValueError(f"job.dedup_horizon ({self.dedup_horizon}) must be at least 1 s")
        if duration_ms(self.state_ttl) < duration_ms(self.alert_cooldown):
            raise ValueError(
                f"job.state_ttl ({self.state_ttl}) must be at least job.alert_cooldown "
                f"({self.alert_cooldown}), or cooldown state would expire early"
            )
        return self
