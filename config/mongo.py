"""MongoDB target of the sink and the queries (section `mongo`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from config.validators import Identifier, PositiveInt


class MongoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Credentials belong in FRAUD_MONGO__URI in the environment, never in a file.
    uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    database: Identifier = "fraud_detection"
    alerts_collection: Identifier = "alerts"
    window_stats_collection: Identifier = "window_stats"
    dead_letters_collection: Identifier = "sink_dead_letters"
    # every `fraudctl rules set`: who, when, old and new values
    rule_changes_collection: Identifier = "rule_changes"
    consumer_group: str = "fraud-mongo-sink"
    batch_size: PositiveInt = 2000
    batch_timeout_ms: PositiveInt = 500
    # insert_first: insert_many, then replace only the duplicates that changed (fast on
    # FerretDB, whose upserts scan the collection); upsert: ReplaceOne(upsert=True) per doc.
    # Both leave the same documents.
    write_strategy: Literal["insert_first", "upsert"] = "insert_first"
    # server selection / connect timeout; a down server is noticed after this long
    server_timeout_ms: PositiveInt = 3000
    # retry back-off while MongoDB is unreachable: doubles from 200 ms up to this
    retry_backoff_max_ms: PositiveInt = 5000
    # on SIGTERM with MongoDB unreachable: keep retrying the open batch this long, then exit
    # without committing it (it is consumed again on restart; nothing is lost)
    shutdown_grace_ms: PositiveInt = 15000
    # Prometheus metrics of `fraudctl sink` on this port (all interfaces); 0 = off
    metrics_port: int = Field(default=0, ge=0, le=65535)
