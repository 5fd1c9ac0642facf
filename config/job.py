"""The detection job: event time, cooldown, analytics windows and every rule (section `job`).

Defaults are the contract in docs/contract.md ("Detection rules"); each rule can be switched off
(`enabled: false`) and tuned.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.validators import Duration, PositiveInt, duration_ms

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
Money = Decimal


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class HighValueRule(_Rule):
    severity: Severity = "MEDIUM"
    amount_over: Money = Field(default=Decimal("500.00"), gt=0)


class _HopWindowRule(_Rule):
    """A rule over HOP windows of `window` length, one every `slide`."""

    window: Duration = "5 min"
    slide: Duration = "1 min"

    @model_validator(mode="after")
    def _window_is_whole_slides(self) -> _HopWindowRule:
        # Flink plans a HOP aggregate only when the window is a whole number of slides
        window, slide = duration_ms(self.window), duration_ms(self.slide)
        if slide == 0 or slide > window or window % slide:
            raise ValueError(
                f"window {self.window!r} must be a whole number (at least 1) of slides "
                f"{self.slide!r}, e.g. window 5 min with slide 1 min, 150 s or 5 min"
            )
        return self


class VelocityRule(_HopWindowRule):
    severity: Severity = "HIGH"
    max_count: PositiveInt = 3  # alert when count > max_count


class DeviceSharingRule(_HopWindowRule):
    severity: Severity = "CRITICAL"
    max_users: PositiveInt = 3  # alert when distinct users > max_users


class GeoHopRule(_Rule):
    severity: Severity = "HIGH"
    within: Duration = "10 min"


class ImpossibleTravelRule(_Rule):
    severity: Severity = "CRITICAL"
    max_speed_kmh: float = Field(default=900.0, gt=0)
    min_distance_km: float = Field(default=100.0, ge=0)
    # consecutive pairs further apart in time are not compared: a filter on each LAG pair, not a
    # bound on state (one previous transaction per card, kept for job.state_ttl); at 900 km/h,
    # 24 h covers any distance on Earth
    within: Duration = "24 h"


class CardTestingRule(_Rule):
    severity: Severity = "CRITICAL"
    min_probes: PositiveInt = 3
    probe_under: Money = Field(default=Decimal("2.00"), gt=0)
    charge_over: Money = Field(default=Decimal("200.00"), gt=0)
    within: Duration = "10 min"


RISK_FEATURES = (
    "amount",
    "night",
    "risky_category",
    "channel_online",
    "round_amount",
    "foreign_currency",
)


class RiskScoreRule(_Rule):
    """Severity follows the score: >= critical_at is CRITICAL, else HIGH.

    The score is the weighted mean of the features of udfs/risk_score.py (see its docstring);
    these settings reach the UDF as one JSON string literal in the rendered SQL.
    """

    threshold: float = Field(default=0.8, ge=0, le=1)
    critical_at: float = Field(default=0.95, ge=0, le=1)
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "amount": 0.35,
            "night": 0.15,
            "risky_category": 0.2,
            "channel_online": 0.1,
            "round_amount": 0.1,
            "foreign_currency": 0.1,
        }
    )
    # the amount feature is min(amount / amount_scale, 1)
    amount_scale: float = Field(default=1000.0, gt=0)
    # event hours (UTC) counted as night: start <= hour < end
    night_hours: tuple[int, int] = (0, 5)
    risky_categories: list[str] = Field(
        default_factory=lambda: ["electronics", "jewelry", "gift_cards", "crypto", "travel"]
    )
    online_channels: list[str] = Field(default_factory=lambda: ["online", "ecommerce", "web"])
    home_currency: str = "USD"

    @model_validator(mode="after")
    def _known_weights(self) -> RiskScoreRule:
        unknown = set(self.weights) - set(RISK_FEATURES)
        if unknown:
            raise ValueError(
                f"unknown risk_score weights {sorted(unknown)}; allowed: {list(RISK_FEATURES)}"
            )
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("risk_score weights must be >= 0 with a positive sum")
        lo, hi = self.night_hours
        if not 0 <= lo <= 24 or not 0 <= hi <= 24:
            raise ValueError("risk_score.night_hours must be two hours in 0-24")
        return self


class Rules(BaseModel):
    """Every detection rule, in the order of the rules table (docs/contract.md).

    This model is the one list of rules: a field named `velocity` is the rule VELOCITY, rendered
    from sql_templates/rules/velocity.sql.j2 and tested by sql_templates/rules/velocity.cases.yaml.
    """

    model_config = ConfigDict(extra="forbid")

    high_value: HighValueRule = Field(default_factory=HighValueRule)
    velocity: VelocityRule = Field(default_factory=VelocityRule)
    device_sharing: DeviceSharingRule = Field(default_factory=DeviceSharingRule)
    geo_hop: GeoHopRule = Field(default_factory=GeoHopRule)
    impossible_travel: ImpossibleTravelRule = Field(default_factory=ImpossibleTravelRule)
    card_testing: CardTestingRule = Field(default_factory=CardTestingRule)
    risk_score: RiskScoreRule = Field(default_factory=RiskScoreRule)


def rule_names() -> tuple[str, ...]:
    """Config names of every rule (`velocity`, ...), in rules-table order; the rule's contract
    name is the upper-case form (`VELOCITY`)."""
    return tuple(Rules.model_fields)


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
