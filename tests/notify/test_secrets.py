"""Webhook URLs and SMTP credentials come from the environment and never show in full."""

from __future__ import annotations

import pytest

from notify.secrets import (
    SecretsError,
    mask_url,
    smtp_credentials,
    webhook_targets,
)

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"


def test_mask_url_keeps_scheme_and_host_only() -> None:
    assert mask_url(SLACK) == "https://hooks.slack.com/…"
    assert mask_url("http://user:pw@127.0.0.1:8080/hook?token=abc") == "http://127.0.0.1:8080/…"


def test_targets_are_named_or_get_a_stable_hash_name() -> None:
    env = {"FRAUD_NOTIFY_WEBHOOK_URLS": f" oncall={SLACK} , http://127.0.0.1:9/x ,"}
    first, second = webhook_targets(env)
    assert (first.name, first.url) == ("oncall", SLACK)
    assert second.name.startswith("webhook-") and len(second.name) == 16
    assert webhook_targets(env)[1].name == second.name  # stable across restarts
    assert "XXXX" not in repr(first) and "hooks.slack.com" in repr(first)


def test_no_variable_means_no_webhooks() -> None:
    assert webhook_targets({}) == []
    assert webhook_targets({"FRAUD_NOTIFY_WEBHOOK_URLS": " "}) == []


@pytest.mark.parametrize(
    "value",
    [
        "ftp://host/secret-token",
        "hooks.slack.com/services/secret-token",
        f"a={SLACK},a=https://h/secret-token",  # a name twice
        "email=https://h/secret-token",  # the e-mail destination's name
    ],
)
def test_a_bad_entry_is_refused_without_showing_it(value) -> None:
    with pytest.raises(SecretsError) as err:
        webhook_targets({"FRAUD_NOTIFY_WEBHOOK_URLS": value})
    assert "secret-token" not in str(err.value) and "XXXX" not in str(err.value)


def test_smtp_credentials() -> None:
    assert smtp_credentials({}) is None
    user, password = smtp_credentials(
        {"FRAUD_NOTIFY_SMTP_USER": "bot", "FRAUD_NOTIFY_SMTP_PASSWORD": "pw-123"}
    )
    assert user == "bot" and password.get_secret_value() == "pw-123"
    assert "pw-123" not in repr(password)
    with pytest.raises(SecretsError, match="FRAUD_NOTIFY_SMTP_PASSWORD"):
        smtp_credentials({"FRAUD_NOTIFY_SMTP_USER": "bot"})
