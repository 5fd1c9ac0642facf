"""Kafka connection and the contract's topics (section `kafka`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.validators import HostPort, PositiveInt, TopicName

# librdkafka logs up to this level (3: errors). Its notices and info lines, such as BGQUEUE's
# "Purging 1 unserved events from background queue" when a consumer closes, are not for the
# user of a CLI verb; what goes wrong is reported by the verb itself.
CLIENT_LOG_LEVEL = 3


def client_config(bootstrap_servers: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The librdkafka settings of a client of the project: the brokers, errors-only logging,
    then `extra` (which may set its own `log_level` or `logger`)."""
    return {"bootstrap.servers": bootstrap_servers, "log_level": CLIENT_LOG_LEVEL, **(extra or {})}


class Topics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: TopicName = "transactions"
    fraud_alerts: TopicName = "fraud_alerts"
    window_stats: TopicName = "window_stats"
    dlq: TopicName = "transactions_dlq"
    truth: TopicName = "transactions_truth"
    # versions of the rules' run-time parameters (`fraudctl rules set`), compacted
    rules: TopicName = "fraud_rules"


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: HostPort = "127.0.0.1:9092"
    topics: Topics = Field(default_factory=Topics)
    # partitions per topic *role* (the keys of `topics`)
    partitions: dict[str, PositiveInt] = Field(
        default_factory=lambda: {
            "transactions": 4,
            "fraud_alerts": 2,
            "window_stats": 1,
            "dlq": 1,
            "truth": 1,
            "rules": 1,
        }
    )

    @model_validator(mode="after")
    def _partitions_name_topics(self) -> KafkaSettings:
        unknown = set(self.partitions) - set(Topics.model_fields)
        if unknown:
            raise ValueError(
                f"kafka.partitions has unknown topic roles {sorted(unknown)}; "
                f"allowed: {sorted(Topics.model_fields)}"
            )
        return self

    def topic_partitions(self) -> dict[str, int]:
        """Topic name -> partition count, for every topic in the contract."""
        return {
            getattr(self.topics, role): self.partitions.get(role, 1) for role in Topics.model_fields
        }
