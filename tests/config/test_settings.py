"""The typed config: defaults, environment overrides, clear errors, and its reference
(docs/configuration.md)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_the_contract():
    s = load_settings()
    assert s.kafka.topics.transactions == "transactions"
    assert s.kafka.topics.dlq == "transactions_dlq"
    assert s.job.watermark_delay == "5 s"
    assert s.job.alert_cooldown == "5 min"
    assert s.job.rules.velocity.max_count == 3
    assert s.job.rules.high_value.amount_over == Decimal("500.00")
    assert s.mongo.database == "fraud_detection"


def test_environment_overrides_the_file(monkeypatch):
    monkeypatch.setenv("FRAUD_KAFKA__BOOTSTRAP_SERVERS", "broker-a:9093,broker-b:9093")
    monkeypatch.setenv("FRAUD_JOB__RULES__VELOCITY__MAX_COUNT", "7")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "broker-a:9093,broker-b:9093"
    assert s.job.rules.velocity.max_count == 7


@pytest.mark.parametrize(
    ("overrides", "key", "hint"),
    [
        ({"kafka": {"topics": {"transactions": "x'); DROP TABLE t; --"}}},
         "kafka.topics.transactions", "not a valid Kafka topic name"),
        ({"job": {"watermark_delay": "1' SECOND; DROP"}}, "job.watermark_delay", "not a duration"),
        ({"kafka": {"bootstrap_servers": "nohostport"}}, "kafka.bootstrap_servers", "HOST:PORT"),
        ({"stack": {"ports": {"kafka": 70000}}}, "stack.ports.kafka", "less than or equal"),
        ({"job": {"rules": {"velocity": {"severity": "HUGE"}}}}, "job.rules.velocity.severity",
         "'CRITICAL'"),
        ({"job": {"state_ttl": "1 min"}}, "job", "at least job.alert_cooldown"),
        ({"job": {"dedup_horizon": "500 ms"}}, "job", "dedup_horizon (500 ms) must be at least"),
        ({"kafka": {"partitions": {"nope": 2}}}, "kafka", "unknown topic roles"),
        ({"flink": {"source_fetch_wait": "1 min"}}, "flink.source_fetch_wait", "at most 5 s"),
        ({"job": {"rules": {"velocity": {"slide": "2 min"}}}}, "job.rules.velocity",
         "whole number (at least 1) of slides"),
        ({"job": {"rules": {"device_sharing": {"slide": "0 s"}}}}, "job.rules.device_sharing",
         "whole number"),
        # a size the JVM or Flink would refuse only once the process starts
        ({"stack": {"taskmanager_memory": "8 gigs"}}, "stack.taskmanager_memory",
         "not a memory size"),
        ({"stack": {"kafka_heap": "1gb -XX:+Evil"}}, "stack.kafka_heap", "not a memory size"),
        ({"producer": {"lookalike_rate": -0.1}}, "producer.lookalike_rate",
         "greater than or equal"),
        ({"producer": {"fraud_rate": 0.6, "lookalike_rate": 0.45}}, "producer",
         "must stay under 1"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key_and_what_is_allowed(overrides, key, hint):
    with pytest.raises(ConfigError) as err:
        load_settings(**overrides)
    assert key in str(err.value)
    assert hint in str(err.value)


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match=r"job\.rules\.velocity\.windw"):
        load_settings(job={"rules": {"velocity": {"windw": "5 min"}}})


def test_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


def test_card_token_secret_comes_from_the_environment_and_never_prints(monkeypatch):
    monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET", "s3cr3t-value")
    s = load_settings()
    assert s.card_token_secret() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(s)
    assert "s3cr3t-value" not in s.model_dump_json()


@pytest.mark.parametrize("from_env", [True, False])
def test_the_card_token_key_file_holds_the_key_for_its_owner_only(monkeypatch, tmp_path, from_env):
    if from_env:
        monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET", "s3cr3t-value")
    else:
        monkeypatch.delenv("FRAUD_CARD_TOKEN_SECRET", raising=False)
    s = load_settings(stack={"run_dir": str(tmp_path / "run" / "pids")})
    path = s.card_token_secret_file()
    assert path.parent == tmp_path / "run"
    assert path.read_text() == s.card_token_secret()
    assert path.stat().st_mode & 0o777 == 0o600
    if from_env:  # a key from the environment leaves the generated one alone
        assert s.card_token_secret() == "s3cr3t-value"
        assert not (tmp_path / "run" / "card_token_secret").exists()


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _leaf_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_configuration_reference_names_every_key():
    """docs/configuration.md names every config key (its section and its leaf name)."""
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = []
    for key in _leaf_keys(Settings):
        if key == "card_token_secret_value":
            assert "FRAUD_CARD_TOKEN_SECRET" in reference
            continue
        section, *_, leaf = key.split(".")
        if f"`{section}." not in reference or leaf not in reference:
            missing.append(key)
    assert missing == [], f"config keys not documented in docs/configuration.md: {missing}"


def test_environment_overrides_load_the_same_settings(monkeypatch):
    from config.settings import environment_overrides

    overrides = {
        "kafka": {"topics": {"fraud_alerts": "x.alerts"}, "bootstrap_servers": "h:1"},
        "job": {"delivery_guarantee": "exactly-once"},
    }
    for name, value in environment_overrides(overrides).items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.kafka.topics.fraud_alerts == "x.alerts"
    assert s.kafka.topics.transactions == "transactions"  # the rest of the section stays
    assert s.kafka.bootstrap_servers == "h:1"
    assert s.job.delivery_guarantee == "exactly-once"


def test_explicit_overrides_beat_the_environment_and_keep_the_files_other_keys(
    monkeypatch, tmp_path
):
    config = tmp_path / "fraud.yaml"
    config.write_text("job:\n  rules:\n    velocity: {max_count: 9, severity: LOW}\n")
    monkeypatch.setenv("FRAUD_FLINK__PARALLELISM", "3")
    monkeypatch.setenv("FRAUD_JOB__RULES__VELOCITY__SEVERITY", "MEDIUM")
    s = load_settings(
        config, flink={"parallelism": 2}, job={"rules": {"geo_hop": {"within": "3 min"}}}
    )
    assert s.flink.parallelism == 2  # the flag, not the exported variable
    assert s.job.rules.velocity.severity == "MEDIUM"  # the environment over the file
    assert s.job.rules.velocity.max_count == 9  # the file's key beside an overridden one
    assert s.job.rules.geo_hop.within == "3 min"


def test_an_unparsable_environment_value_is_a_config_error(monkeypatch):
    monkeypatch.setenv("FRAUD_STACK__PORTS", "{not json")
    with pytest.raises(ConfigError, match="environment"):
        load_settings()


@pytest.mark.parametrize(
    ("overrides", "fraction"),
    [
        ({}, 0.15),
        ({"flink": {"state_backend": "rocksdb"}}, 0.4),
        ({"flink": {"state_backend": "rocksdb"}, "stack": {"taskmanager_managed_fraction": 0.2}},
         0.2),
    ],
)  # fmt: skip
def test_the_stack_sizes_managed_memory_for_the_state_backend(overrides, fraction):
    s = load_settings(**overrides)
    assert s.stack.managed_fraction(s.flink.state_backend) == fraction


@pytest.mark.parametrize("bad", ["9259-9249", "9249-", "0-10", "9249-70000", "a-b", "9249,9250"])
def test_a_port_range_that_is_no_range_is_refused(bad):
    with pytest.raises(ConfigError, match=r"stack\.ports\.flink_metrics"):
        load_settings(stack={"ports": {"flink_metrics": bad}})


def test_a_port_range_reads_as_its_ports():
    from config.validators import port_range

    s = load_settings(stack={"ports": {"flink_metrics": " 9300-9302 "}})
    assert s.stack.ports.flink_metrics == "9300-9302"
    assert list(port_range(s.stack.ports.flink_metrics)) == [9300, 9301, 9302]
    assert list(port_range("9300")) == [9300]
