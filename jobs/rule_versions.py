"""Reading and writing the rules' run-time parameter versions (`fraudctl rules ...`).

The job's source of truth is the compacted topic `fraud_rules` (udfs/rule_parameters.py reads
it); every change is also kept in MongoDB `rule_changes` with who made it, when, and the old
and new values, because compaction eventually keeps only each rule's newest version.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Mapping
from typing import Any

from config import Settings
from config.rule_changes import changed_parameters, initial_parameters
from fraudctl.topics import RULES_TOPIC_CONFIG, ensure_topics
from mongo_sink.documents import iso_ms
from udfs.rule_parameters import TUNABLE, ParameterHistory, RuleVersion, read_versions

# an analyst's change applies to transactions from this long after `rules set`: time for the
# running job to read it before the first transaction it applies to (README "Live rule tuning")
APPLY_DELAY_MS = 1000


def _iso(ms: int) -> str:
    return iso_ms(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


def current_history(settings: Settings, timeout_s: float = 30) -> ParameterHistory:
    """The config's values and every version in fraud_rules: what the job applies."""
    from confluent_kafka import Consumer

    history = ParameterHistory(initial_parameters(settings.job.rules))
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "fraudctl-rules",
            "enable.auto.commit": False,
        }
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
) -> tuple[RuleVersion, RuleVersion]:
    """Validate `changes` against the rule's parameters in force, write the next version to
    fraud_rules and log it in MongoDB `rule_changes`; return (old, new) versions.

    RuleChangeError before anything is written when the change is refused.
    """
    rules = settings.job.rules
    # refuse an unknown rule or key and a bad value before any I/O; then again against the
    # parameters in force, which the change builds on
    changed_parameters(
        rules, rule, initial_parameters(rules)[rule] if rule in TUNABLE else {}, changes
    )
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
        changed_at=_iso(now_ms),
        effective_at=_iso(effective_ms),
    )
    _produce(settings, new)
    _log_change(settings, old, new)
    return old, new


def _produce(settings: Settings, version: RuleVersion) -> None:
    from confluent_kafka import Producer

    topic = settings.kafka.topics.rules
    ensure_topics(settings.kafka.bootstrap_servers, {topic: 1}, config=RULES_TOPIC_CONFIG)
    errors: list[str] = []
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "acks": "all"})
    producer.produce(
        topic,
        key=version.rule.encode(),
        value=version.to_json().encode(),
        on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
    )
    if producer.flush(30) or errors:
        raise RuntimeError(f"writing to {topic} failed: {errors or 'no answer in 30 s'}")


def _log_change(settings: Settings, old: RuleVersion, new: RuleVersion) -> None:
    from mongo_sink.store import client_for, database

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
    from mongo_sink.store import client_for, database

    client = client_for(settings)
    try:
        coll = database(client, settings)[settings.mongo.rule_changes_collection]
        query = {"rule": {"$eq": rule}} if rule else {}
        return list(coll.find(query, {"_id": 0}).sort([("changed_at", 1), ("version", 1)]))
    finally:
        client.close()
