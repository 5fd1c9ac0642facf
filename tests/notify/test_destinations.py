"""How a destination's answer is classified: sent, retried (with Retry-After) or permanent."""

from __future__ import annotations

import datetime as dt

import pytest

from config import load_settings
from notify.destinations import Smtp, Webhook, _by_code, build, classify_http
from notify.retry import Permanent, Sent, Transient

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "retry_after", "body", "expected"),
    [
        (200, None, "ok", Sent("http_200:ok")),
        (204, None, "", Sent("http_204")),
        (429, "5", "", Transient("http_429", 5.0)),
        (429, "Mon, 07 Dec 2026 12:00:10 GMT", "", Transient("http_429", 10.0)),
        (500, None, "<html>boom</html>", Transient("http_500", None)),
        (503, "2", "", Transient("http_503", 2.0)),
        (408, None, "", Transient("http_408", None)),
        (404, "5", "no_service", Permanent("http_404:no_service")),
        (403, None, "invalid_token", Permanent("http_403:invalid_token")),
        (400, None, "Bad request, see https://x", Permanent("http_400")),
        (301, None, "", Permanent("http_301")),  # redirects are not followed
    ],
)
def test_classify_http(status, retry_after, body, expected) -> None:
    assert classify_http(status, retry_after, body, NOW) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (550, Permanent("smtp_550:5.1.1 no such user")),
        (553, Permanent("smtp_553:5.1.1 no such user")),
        (451, Transient("smtp_451:5.1.1 no such user")),
        (421, Transient("smtp_421:5.1.1 no such user")),
    ],
)
def test_smtp_5xx_is_permanent_4xx_transient(code, expected) -> None:
    assert _by_code(code, b"5.1.1 no such\r\n user") == expected


def test_build_reads_webhooks_from_the_environment_and_smtp_from_config() -> None:
    s = load_settings(
        notify={"smtp": {"host": "mail.example", "from_address": "f@example.com",
                         "to": ["oncall@example.com"]}}
    ).notify  # fmt: skip
    env = {"FRAUD_NOTIFY_WEBHOOK_URLS": "oncall=https://hooks.example/T/B/secret"}
    hook, mail = build(s, env)
    assert isinstance(hook, Webhook) and isinstance(mail, Smtp)
    assert (hook.name, mail.name) == ("oncall", "email")
    assert hook.describe() == "webhook oncall (https://hooks.example/…)"
    assert "secret" not in mail.describe() + hook.describe()
    assert build(load_settings().notify, {}) == []


def test_smtp_auth_is_never_sent_in_clear() -> None:
    s = load_settings(
        notify={"smtp": {"host": "mail.example", "from_address": "f@example.com",
                         "to": ["o@example.com"], "starttls": False}}
    ).notify  # fmt: skip
    env = {"FRAUD_NOTIFY_SMTP_USER": "bot", "FRAUD_NOTIFY_SMTP_PASSWORD": "pw"}
    with pytest.raises(ValueError, match="in clear"):
        build(s, env)
    assert [d.name for d in build(s, {})] == ["email"]  # no AUTH: a plain relay is fine
