"""A model store in a temporary directory holding one small trained version."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.model.store import ModelStore
from jobs.model.train import TrainedModel, train
from tests.model.synthetic import frame


@pytest.fixture(scope="session")
def small_model() -> TrainedModel:
    df, positives = frame(rows=1500, fraud_share=0.08, seed=2)
    return train(df, positives, seed=7, num_trees=20, source="synthetic")


@pytest.fixture
def store(tmp_path: Path, small_model: TrainedModel) -> ModelStore:
    """A store with version 1 (the small model)."""
    s = ModelStore(tmp_path / "models")
    s.write(small_model.model_text(), small_model.meta)
    return s
