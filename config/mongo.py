"""MongoDB target of the sink and the queries (section `mongo`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from config.validators import Identifier, PositiveInt


class MongoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Credentials belong in FRAUD_MONGO__URI in the environment, never in a file.
    uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    database: Identifier = "fraud_detection"
    alerts_collection: Identifier = "alerts"
    window_stats_collection: Identifier = "window_stats"
    dead_letters_collection: Identifier = "sink_dead_letters"
    consumer_group: str = "fraud-mongo-sink"
    batch_size: PositiveInt = 2000
    batch_timeout_ms: PositiveInt = 500
