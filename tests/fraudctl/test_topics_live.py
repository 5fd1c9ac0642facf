"""Against the real broker: the one way topics are created and deleted (fraudctl/topics.py),
which the stack, the benchmarks' clean-up and the tests' clean-up all use."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from fraudctl.topics import TopicError, delete_topics, ensure_topics
from tests.polling import wait_until


def _topics(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics)


@pytest.mark.integration
def test_topics_created_then_deleted_and_a_missing_one_skipped(live_stack, unique_name) -> None:
    bootstrap = live_stack.kafka.bootstrap_servers
    a, b = f"test_topics_{unique_name}_a", f"test_topics_{unique_name}_b"
    assert sorted(ensure_topics(bootstrap, {a: 2, b: 1})) == [a, b]
    assert ensure_topics(bootstrap, {a: 2}) == []  # there already: left as it is
    assert {a, b} <= _topics(bootstrap)

    never = f"test_topics_{unique_name}_never_created"
    assert sorted(delete_topics(bootstrap, [a, b, never, a])) == [a, b]
    wait_until(lambda: not ({a, b} & _topics(bootstrap)), 60, "the topics to be gone")
    assert delete_topics(bootstrap, [a]) == []  # gone already: nothing to do, no error


def test_deleting_from_an_unreachable_broker_is_a_topic_error(unique_name) -> None:
    with pytest.raises(TopicError, match="deleting topic"):
        delete_topics("127.0.0.1:1", [f"test_topics_{unique_name}"], timeout_s=2)
