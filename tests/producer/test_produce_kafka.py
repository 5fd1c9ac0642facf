"""Against the real broker: `fraudctl produce` to a fresh topic, read back with kcat (an
independent client), compare with what the pure generator yields for the same options."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from fraudctl.topics import delete_topics, ensure_topics
from producer.cli import parse_start_time
from producer.generator import GeneratorOptions, generate
from producer.population import build_population

FRAUDCTL = str(Path(sys.executable).with_name("fraudctl"))
KEY = "integration-test-key"
START = "2026-11-21T06:00:00Z"
COUNT = 3000


def _kcat(bootstrap: str, topic: str, fmt: str) -> list[bytes]:
    res = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", fmt],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return res.stdout.splitlines()


def _canonical(records) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in records)


@pytest.mark.integration
@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_produce_to_kafka_and_consume_back(live_stack, unique_name, tmp_path, client) -> None:
    bootstrap = live_stack.kafka.bootstrap_servers
    topic = f"test_produce_{unique_name}"
    truth_topic = f"test_truth_{unique_name}"
    truth_file = tmp_path / "truth.jsonl"
    env = dict(os.environ)
    env.update({"FRAUD_CARD_TOKEN_SECRET": KEY, "FRAUD_KAFKA__TOPICS__TRUTH": truth_topic})
    try:
        res = subprocess.run(
            [FRAUDCTL, "produce", "--bootstrap-servers", bootstrap, "--topic", topic,
             "--client", client, "--start-time", START, "--speedup", "60", "--rate", "3000",
             "--no-throttle", "--count", str(COUNT), "--seed", "11", "--fraud-rate", "0.1",
             "--bad-records", "0.02", "--truth", str(truth_file), "--truth-topic", "--json"],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert summary["failed"] == 0 and summary["undelivered"] == 0
        assert summary["delivered"] == summary["sent"] >= COUNT

        expected = generate(
            build_population(11, 10_000),
            GeneratorOptions(
                seed=11,
                start_ms=parse_start_time(START),
                events_per_second=50.0,
                fraud_rate=0.1,
                bad_records=0.02,
            ),
            KEY,
            COUNT,
        )
        got = _kcat(bootstrap, topic, "%k\t%s\n")
        assert len(got) == summary["sent"] == len(expected)
        assert Counter(got) == Counter((e.key or b"") + b"\t" + e.value for e in expected)

        # key = user_id, so each user's records sit in one partition
        partitions = defaultdict(set)
        for line in _kcat(bootstrap, topic, "%k\t%p\n"):
            key, part = line.split(b"\t")
            partitions[key].add(part)
        assert all(len(p) == 1 for p in partitions.values())
        assert len({p for ps in partitions.values() for p in ps}) == 4

        truth_from_topic = _canonical(json.loads(v) for v in _kcat(bootstrap, truth_topic, "%s\n"))
        truth_from_file = _canonical(json.loads(v) for v in truth_file.read_text().splitlines())
        expected_truth = _canonical(t for e in expected for t in e.truth)
        assert truth_from_topic == truth_from_file == expected_truth
        assert any('"kind": "scenario"' in t for t in expected_truth)
    finally:
        delete_topics(bootstrap, [topic, truth_topic])


@pytest.mark.integration
@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_sink_counts_rejected_records(live_stack, unique_name, client) -> None:
    """The broker refuses records over the topic's max.message.bytes: counted as failed."""
    from producer.sinks import open_kafka_sink

    bootstrap = live_stack.kafka.bootstrap_servers
    topic = f"test_reject_{unique_name}"
    ensure_topics(bootstrap, {topic: 1}, config={"max.message.bytes": "2000"})
    try:
        sink = open_kafka_sink(client, bootstrap, topic, delivery_timeout_ms=15_000)
        for i in range(20):
            # incompressible, so the batch really exceeds the limit; one record per batch
            big = base64.b64encode(os.urandom(6000)) if i % 5 == 0 else b"small"
            sink.send(f"u_{i}".encode(), big)
            assert sink.flush(30) == 0
        sink.close()
        # kafka-python's idempotent producer treats the refusal as fatal and fails the rest too
        assert sink.failed == 4 if client == "confluent" else sink.failed >= 4
        assert sink.delivered + sink.failed == 20
        assert sink.last_error
        assert len(_kcat(bootstrap, topic, "%s\n")) == sink.delivered
    finally:
        delete_topics(bootstrap, [topic])
