"""Reading and writing the rules' run-time parameter versions (`fraudctl rules ...`).

The job's source of truth is the compacted topic `fraud_rules` (udfs/rule_parameters.py reads
it); every change is also kept in MongoDB `rule_changes` with who made it, when, and the old
and new values, because compaction eventually keeps only each rule's newest version.

Two analysts changing one rule at once must not both write version N+1. A change is written in
a Kafka transaction whose transactional id is the rule's: starting it fences any other writer
of that rule still between reading the versions and committing, so of two overlapping changes
the second to start wins and the first is refused with `RuleChangeConflict` (nothing of it is
written); changes that do not overlap simply follow each other.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Callable, Mapping
from typing import Any

from config import Settings
from config.kafka import client_config
from config.rule_changes import RuleChangeError, changed_parameters, initial_parameters
from config.rules import rule_names
from fraudctl.times import iso_ms
from fraudctl.topics import RULES_TOPIC_CONFIG, ensure_topics
from udfs.rule_parameters import ParameterHistory, RuleVersion, read_versions

# an analyst's change applies to transactions from this long after `rules set`: time for the
# running job to read it before the first transaction it applies to (docs/live-rule-tuning.md)
APPLY_DELAY_MS = 1000


class RuleChangeConflict(RuleChangeError):
    """Another change of the same rule was written meanwhile; nothing of this one was."""


def current_history(settings: Settings, timeout_s: float = 30) -> ParameterHistory:
    """The config's values and every committed version in fraud_rules: what the job applies."""
    from confluent_kafka import Consumer

    history = ParameterHistory(initial_parameters(settings.job.rules))
    consumer = Consumer(
        client_config(
            settings.kafka.bootstrap_servers,
            {
                "group.id": "fraudctl-rules",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            },
        )
    )
    try:
        for version in read_versions(consumer, settings.kafka.topics.rules, timeout_s):
            history.add(version)
    finally:
        consumer.close()
    return history


def publish_change(
    settings: Settings,
    rule: str,
    changes: Mapping[str, Any],
    now_ms: int | None = None,
    changed_by: str | None = None,
    before_commit: Callable[[], None] | None = None,
) -> tuple[RuleVersion, RuleVersion]:
    """Validate `changes` against the rule's parameters in force, write the next version to
    fraud_rules and log it in MongoDB `rule_changes`; return (old, new) versions.

    RuleChangeError before anything is written when the change is refused; RuleChangeConflict
    when another change of the rule was written meanwhile. `before_commit` (tests) runs between
    reading the versions and committing the new one.
    """
    from confluent_kafka import KafkaError, KafkaException

    rules = settings.job.rules
    # refuse an unknown rule or key and a bad value before any I/O; then again against the
    # parameters in force, which the change builds on
    changed_parameters(
        rules, rule, initial_parameters(rules)[rule] if rule in rule_names() else {}, changes
    )
    topic = settings.kafka.topics.rules
    ensure_topics(settings.kafka.bootstrap_servers, {topic: 1}, config=RULES_TOPIC_CONFIG)
    producer = _transactional_producer(settings, rule)
    try:
        old = current_history(settings).latest(rule)
        params = changed_parameters(rules, rule, old.params, changes)
        now_ms = now_ms if now_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        effective_ms = now_ms + APPLY_DELAY_MS
        new = RuleVersion(
            rule=rule,
            version=old.version + 1,
            effective_at_ms=effective_ms,
            params=params,
            changed_by=changed_by or getpass.getuser(),
            changed_at=iso_ms(now_ms),
            effective_at=iso_ms(effective_ms),
        )
        if before_commit is not None:
            before_commit()
        producer.begin_transaction()
        producer.produce(topic, key=rule.encode(), value=new.to_json().encode())
        producer.commit_transaction(30)
    except KafkaException as exc:
        err = exc.args[0]
        if err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
            raise RuleChangeConflict(
                f"another change of {rule} was written while this one was prepared; nothing "
                "of this one was: look at `fraudctl rules list` and try again"
            ) from None
        raise RuntimeError(f"writing to {topic} failed: {err.str()}") from exc
    _log_change(settings, old, new)
    return old, new


def _transactional_producer(settings: Settings, rule: str) -> Any:
    """A producer whose transactions are the rule's: starting it fences the rule's other
    writers (see the module docstring)."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        client_config(
            settings.kafka.bootstrap_servers,
            {
                "transactional.id": f"fraudctl-rules-{settings.kafka.topics.rules}-{rule}",
                "acks": "all",
            },
        )
    )
    try:
        producer.init_transactions(30)
    except KafkaException as exc:
        raise RuntimeError(f"Kafka at {settings.kafka.bootstrap_servers}: {exc}") from exc
    return producer


def _log_change(settings: Settings, old: RuleVersion, new: RuleVersion) -> None:
    from fraudctl.mongo import client_for, database

    client = client_for(settings)
    try:
        database(client, settings)[settings.mongo.rule_changes_collection].replace_one(
            {"_id": f"{new.rule}:{new.version}:{new.effective_at_ms}"},
            {
                "rule": new.rule,
                "version": new.version,
                "changed_by": new.changed_by,
                "changed_at": new.changed_at,
                "effective_at": new.effective_at,
                "old": old.params,
                "new": new.params,
            },
            upsert=True,
        )
    finally:
        client.close()


def change_log(settings: Settings, rule: str | None = None) -> list[dict[str, Any]]:
    """Every logged change (of `rule`), oldest first."""
    from fraudctl.mongo import client_for, database

    client = client_for(settings)
    try:
        coll = database(client, settings)[settings.mongo.rule_changes_collection]
        query = {"rule": {"$eq": rule}} if rule else {}
        return list(coll.find(query, {"_id": 0}).sort([("changed_at", 1), ("version", 1)]))
    finally:
        client.close()


def applied_versions(settings: Settings) -> dict[str, int] | None:
    """Per rule, the version the running job (named flink.job_name) has applied: the lowest
    over its Python operators' readers (each reads fraud_rules itself); None when no such job
    runs or it has not reported yet."""
    from jobs.cluster.flink_client import FlinkClient, FlinkError

    client = FlinkClient(settings.flink.jobmanager)
    try:
        running = [
            j.job_id
            for j in client.jobs()
            if j.name == settings.flink.job_name and j.state == "RUNNING"
        ]
        if not running:
            return None
        return client.rule_versions_applied(running[0]) or None
    except FlinkError:
        return None
