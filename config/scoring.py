"""Learned scoring (section `scoring`): where the versioned models live, and how long a card's
behaviour profile outlives its last purchase."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from config.stack import PROJECT_ROOT
from config.validators import Duration


class ScoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # RISK_SCORE by the promoted model over each card's behaviour features (docs/scoring.md);
    # off, it alerts on the weighted sum (model version 0) and the job computes no features.
    # Off by default until its cost (+7 % CPU per event on one pair of 1M replays) and its
    # latency are measured over more runs (docs/benchmarks.md, "Learned scoring")
    enabled: bool = False

    # the model store: one directory per version (`<path>/<version>/model.txt` and `meta.json`),
    # relative to the project's directory unless absolute; the job's Python workers read it, so
    # on a cluster of several machines it must be a path they all see
    models_path: str = "models"
    # a card idle this long (event time) starts a new behaviour profile; its state is dropped
    # this long after its last use
    profile_horizon: Duration = "30 d"

    @field_validator("models_path")
    @classmethod
    def _a_plain_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("scoring.models_path must not be empty")
        if any(c in value for c in "'\n\r"):
            raise ValueError(f"{value!r} holds a quote or a line break")
        return value

    def models_dir(self) -> Path:
        """The model store's directory (a relative models_path is the project's)."""
        path = Path(self.models_path).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path
