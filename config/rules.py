"""The detection rules. Each rule's config model is its one declaration (section `job.rules`).

A rule's model (a subclass of `Rule`, a field of `Rules`) declares, beside its settings:

- `entity`: what its alerts are about, a `card` or a `device`;
- `reads`: the view of the job its template reads (`RuleInput`);
- `definition`: the rules table's text, its settings' defaults filled in;
- which settings may change in the running job: fields typed `RunTime[...]` (`enabled`, the
  severity, thresholds, counts, amounts, speeds), which `fraudctl rules set` changes and the
  job's Python operator looks up by event time (udfs/rule_parameters.py). Every other field is
  structural: it shapes the job's SQL (a window length, a pattern's span) and changes with
  `fraudctl upgrade`.

Everything else that lists rules derives from these models: the run-time parameters and their
SQL types (`runtime_parameters`), which rules each view of the job feeds (`rules_reading`), the
SQL that carries the parameters to each rule, the docs' rules and configuration tables
(`docs_tables`), and the tests that run each rule's cases. The contract's defaults are in
docs/contract.md ("Detection rules").
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from config.validators import Duration, PositiveInt, duration_ms

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
Money = Decimal


class _RunTimeMarker:
    """Field metadata: the setting may change in the running job (`RunTime[...]`)."""

    def __repr__(self) -> str:
        return "RunTime"


_RUN_TIME = _RunTimeMarker()


class _RunTime:
    """`RunTime[T]`: a setting of type T that `fraudctl rules set` may change live."""

    def __class_getitem__(cls, item: Any) -> Any:
        return Annotated[item, _RUN_TIME]


RunTime = _RunTime


class RuleInput(StrEnum):
    """The views of the job a rule may read (sql_templates/enrichment/)."""

    # every valid transaction as it arrives, re-deliveries and late ones included: rules that
    # judge one transaction at a time (the job gives them a read of the input of their own)
    ARRIVING = "arriving_transactions"
    # each transaction once, none behind the watermark: windows and patterns
    ON_TIME = "on_time_transactions"
    # each on-time transaction with the card's previous one: rules about consecutive pairs
    CARD_LEGS = "card_legs"


class Rule(BaseModel):
    """A detection rule's settings and its declaration (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    entity: ClassVar[Literal["card", "device"]] = "card"
    reads: ClassVar[RuleInput]
    # the rules table's definition; `{field}` is the field's default
    definition: ClassVar[str]

    enabled: RunTime[bool] = True

    @classmethod
    def name(cls) -> str:
        """The rule's config name (`high_value`): the field of `Rules` it is declared by."""
        return next(n for n, f in Rules.model_fields.items() if f.annotation is cls)

    @classmethod
    def contract_name(cls) -> str:
        """The name alerts carry (`HIGH_VALUE`)."""
        return cls.name().upper()

    @classmethod
    def severity_text(cls) -> str:
        field = cls.model_fields.get("severity")
        return str(field.default) if field is not None else ""


class HighValueRule(Rule):
    reads = RuleInput.ARRIVING
    definition = "amount > {amount_over}"

    severity: RunTime[Severity] = "MEDIUM"
    amount_over: RunTime[Money] = Field(default=Decimal("500.00"), gt=0)


class _HopWindowRule(Rule):
    """A rule over HOP windows of `window` length, one every `slide`."""

    reads = RuleInput.ON_TIME

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
    definition = "more than {max_count} transactions in a {window} HOP window sliding by {slide}"

    severity: RunTime[Severity] = "HIGH"
    max_count: RunTime[PositiveInt] = 3  # alert when count > max_count


class DeviceSharingRule(_HopWindowRule):
    entity = "device"
    definition = "more than {max_users} distinct users in a {window} HOP window sliding by {slide}"

    severity: RunTime[Severity] = "CRITICAL"
    max_users: RunTime[PositiveInt] = 3  # alert when distinct users > max_users


class GeoHopRule(Rule):
    reads = RuleInput.CARD_LEGS
    definition = "two consecutive transactions in different cities within {within}"

    severity: RunTime[Severity] = "HIGH"
    within: Duration = "10 min"


class ImpossibleTravelRule(Rule):
    reads = RuleInput.CARD_LEGS
    definition = (
        "consecutive transactions more than {min_distance_km} km apart whose great-circle "
        "distance / time gap > {max_speed_kmh} km/h (a zero gap is infinitely fast), "
        "compared when under {within} apart"
    )

    severity: RunTime[Severity] = "CRITICAL"
    max_speed_kmh: RunTime[float] = Field(default=900.0, gt=0)
    min_distance_km: RunTime[float] = Field(default=100.0, ge=0)
    # consecutive pairs further apart in time are not compared: a filter on each LAG pair, not a
    # bound on state (one previous transaction per card, kept for job.state_ttl); at 900 km/h,
    # 24 h covers any distance on Earth
    within: Duration = "24 h"


class CardTestingRule(Rule):
    reads = RuleInput.ON_TIME
    definition = (
        "MATCH_RECOGNIZE: {min_probes} or more consecutive transactions under {probe_under} "
        "followed directly by one over {charge_over}, within {within}"
    )

    severity: RunTime[Severity] = "CRITICAL"
    min_probes: PositiveInt = 3
    probe_under: RunTime[Money] = Field(default=Decimal("2.00"), gt=0)
    charge_over: RunTime[Money] = Field(default=Decimal("200.00"), gt=0)
    within: Duration = "10 min"


RISK_FEATURES = (
    "amount",
    "night",
    "risky_category",
    "channel_online",
    "round_amount",
    "foreign_currency",
)


class RiskScoreRule(Rule):
    """Severity follows the score: >= critical_at is CRITICAL, else HIGH.

    The score is the weighted mean of the features of udfs/risk_score.py (see its docstring);
    these settings reach the UDF as one JSON string literal in the rendered SQL.
    """

    reads = RuleInput.CARD_LEGS
    definition = (
        "Python UDF (`udfs/risk_model.py`) scores every transaction with the card's behaviour "
        "features, by the promoted model (`model_version`; 0: a weighted sum); "
        "alert when ≥ {threshold}"
    )

    threshold: RunTime[float] = Field(default=0.8, ge=0, le=1)
    critical_at: RunTime[float] = Field(default=0.95, ge=0, le=1)
    # the model in force (`fraudctl model promote`): its directory under scoring.models_path;
    # 0 is the weighted sum below, the fallback; 1 is the default model, trained from the
    # generator (README "Learned scoring")
    model_version: RunTime[int] = Field(default=1, ge=0)
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

    @classmethod
    def severity_text(cls) -> str:
        return f"HIGH; CRITICAL from {cls.model_fields['critical_at'].default}"

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
    """Every detection rule, in the order of the rules table: the one list of rules. A field
    named `velocity` is the rule VELOCITY, rendered from sql_templates/rules/velocity.sql.j2
    and tested by sql_templates/rules/velocity.cases.yaml."""

    model_config = ConfigDict(extra="forbid")

    high_value: HighValueRule = Field(default_factory=HighValueRule)
    velocity: VelocityRule = Field(default_factory=VelocityRule)
    device_sharing: DeviceSharingRule = Field(default_factory=DeviceSharingRule)
    geo_hop: GeoHopRule = Field(default_factory=GeoHopRule)
    impossible_travel: ImpossibleTravelRule = Field(default_factory=ImpossibleTravelRule)
    card_testing: CardTestingRule = Field(default_factory=CardTestingRule)
    risk_score: RiskScoreRule = Field(default_factory=RiskScoreRule)


def rule_models() -> dict[str, type[Rule]]:
    """Config name -> the rule's model, in rules-table order."""
    return {name: f.annotation for name, f in Rules.model_fields.items()}  # type: ignore[misc]


def rule_names() -> tuple[str, ...]:
    """Config names of every rule (`velocity`, ...), in rules-table order; the rule's contract
    name is the upper-case form (`VELOCITY`)."""
    return tuple(Rules.model_fields)


def _sql_type(field: FieldInfo) -> str:
    """The SQL type a run-time parameter has in the job (its `rule_params` columns)."""
    annotation = field.annotation
    if annotation is bool:
        return "BOOLEAN"
    if annotation is int:
        return "INT"
    # amounts as DOUBLE: compared with the DECIMAL(18, 2) amount, a limit given to the cent
    # decides exactly as a DECIMAL literal would (both sides become the same nearest double)
    if annotation in (float, Decimal):
        return "DOUBLE"
    literal_strings = get_origin(annotation) is Literal and all(
        isinstance(a, str) for a in get_args(annotation)
    )
    if annotation is str or literal_strings:
        return "STRING"
    raise TypeError(f"a run-time parameter cannot be of type {annotation!r}")


def runtime_parameters(rule: str) -> dict[str, str]:
    """`rule`'s run-time parameters (its `RunTime` fields) -> their SQL types, in field order
    (`enabled` first)."""
    model = rule_models()[rule]
    return {
        name: _sql_type(field)
        for name, field in model.model_fields.items()
        if _RUN_TIME in field.metadata
    }


def structural_settings(rule: str) -> tuple[str, ...]:
    """`rule`'s settings that shape the job's SQL: every field that is not run-time."""
    model = rule_models()[rule]
    return tuple(n for n, f in model.model_fields.items() if _RUN_TIME not in f.metadata)


def rules_reading(*inputs: RuleInput) -> tuple[str, ...]:
    """The rules whose template reads one of `inputs`, in rules-table order."""
    return tuple(name for name, model in rule_models().items() if model.reads in inputs)
