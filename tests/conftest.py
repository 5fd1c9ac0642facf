"""Shared fixtures. `live_stack` brings up the real local stack (Kafka, Flink, FerretDB)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from config import Settings, load_settings


@pytest.fixture(scope="session")
def live_stack() -> Iterator[Settings]:
    """The default local stack, started if needed (idempotent), for integration tests.

    If this session started it, it is stopped at the end unless FRAUD_TEST_KEEP_STACK=1;
    a stack that was already up (a developer's) is left as it was.
    """
    from stack import manager

    settings = load_settings()
    started = manager.up(settings)
    yield settings
    if started and os.environ.get("FRAUD_TEST_KEEP_STACK") != "1":
        manager.down(settings)


@pytest.fixture
def unique_name() -> str:
    """A short unique suffix for topics, databases and consumer groups of one test."""
    return uuid.uuid4().hex[:10]
