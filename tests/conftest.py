"""Shared fixtures. `live_stack` brings up the real local stack (Kafka, Flink, FerretDB)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from config import Settings, load_settings

# the settings of the stack `live_stack` brought up, once it has
_live_settings: Settings | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test on the live stack (and before its module's fixtures), start again any
    service of that stack that has died since the last test. Flink 2.2's TaskManager stops
    itself when closing a PyFlink Arrow operator fails while a just-started job is cancelled
    ("FATAL - exception in exception handler of task", `ClosedChannelException`), and every
    later live test then failed for want of task slots, whatever it tested."""
    if _live_settings is not None and "live_stack" in getattr(item, "fixturenames", ()):
        from stack import manager

        restarted = manager.up(_live_settings, install_missing=False)
        if restarted:
            print(f"\nrestarted before {item.nodeid}: {', '.join(restarted)}")


@pytest.fixture(scope="session")
def live_stack() -> Iterator[Settings]:
    """The default local stack, started if needed (idempotent), for integration tests.

    If this session started it, it is stopped at the end unless FRAUD_TEST_KEEP_STACK=1;
    a stack that was already up (a developer's) is left as it was.
    """
    from stack import manager

    global _live_settings
    settings = load_settings()
    started = manager.up(settings)
    _live_settings = settings
    yield settings
    _live_settings = None
    if started and os.environ.get("FRAUD_TEST_KEEP_STACK") != "1":
        manager.down(settings)


@pytest.fixture
def private_rules(live_stack: Settings) -> Iterator[Settings]:
    """Settings with a fraud_rules topic and a MongoDB database of this test's own (removed
    after it), for tests that publish rule changes on the live stack."""
    from fraudctl.mongo import client_for
    from fraudctl.topics import delete_topics

    uid = uuid.uuid4().hex[:10]
    settings = load_settings(
        kafka={"topics": {"rules": f"t{uid}.fraud_rules"}}, mongo={"database": f"t{uid}"}
    )
    yield settings
    delete_topics(settings.kafka.bootstrap_servers, [settings.kafka.topics.rules])
    with client_for(settings) as client:
        client.drop_database(settings.mongo.database)


@pytest.fixture
def unique_name() -> str:
    """A short unique suffix for topics, databases and consumer groups of one test."""
    return uuid.uuid4().hex[:10]
