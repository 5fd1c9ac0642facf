"""The `notify` section: defaults, validation, environment overrides."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings


def test_defaults() -> None:
    n = load_settings().notify
    assert n.min_severity == "CRITICAL"
    assert n.link_template == "fraudctl query alerts --id {alert_id}"
    assert n.url_template is None and n.metrics_port == 0
    assert n.smtp.host is None and n.smtp.starttls is True
    assert (n.claims_collection, n.dead_letters_collection) == (
        "notify_claims",
        "notify_dead_letters",
    )


def test_environment_overrides(monkeypatch) -> None:
    monkeypatch.setenv("FRAUD_NOTIFY__MIN_SEVERITY", "HIGH")
    monkeypatch.setenv("FRAUD_NOTIFY__SMTP__HOST", "mail.example")
    monkeypatch.setenv("FRAUD_NOTIFY__SMTP__FROM_ADDRESS", "fraud@example.com")
    monkeypatch.setenv("FRAUD_NOTIFY__SMTP__TO", '["a@example.com", "b@example.com"]')
    n = load_settings().notify
    assert n.min_severity == "HIGH"
    assert n.smtp.to == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize(
    ("overrides", "key", "hint"),
    [
        ({"min_severity": "URGENT"}, "notify.min_severity", "'CRITICAL'"),
        ({"link_template": "x {card_token}"}, "notify.link_template", "may name only"),
        ({"url_template": "http://h/{}"}, "notify.url_template", "may name only"),
        ({"url_template": "http://h/{alert_id"}, "notify.url_template", "not a valid template"),
        ({"smtp": {"to": ["not-an-address"]}}, "notify.smtp.to", "not an e-mail address"),
        ({"smtp": {"host": "mail.example"}}, "notify.smtp", "set from_address"),
        ({"retry_initial_ms": 60_000}, "notify", "retry_initial_ms"),
        ({"rate_per_s": 0}, "notify.rate_per_s", "greater than 0"),
        ({"claims_collection": "x; drop"}, "notify.claims_collection", "not a valid identifier"),
    ],
)
def test_bad_values_name_the_key(overrides, key, hint) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(notify=overrides)
    assert key in str(err.value) and hint in str(err.value)
