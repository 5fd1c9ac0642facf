"""The notifier against the real Kafka and FerretDB of the local stack, a real HTTP server for
the webhooks and a real SMTP server (STARTTLS, AUTH)."""

from __future__ import annotations

import socket
from itertools import pairwise

import pytest
import requests

from tests.notify.conftest import (
    SMTP_ENV,
    Hooks,
    NotifyEnv,
    SmtpServer,
    notifier_thread,
    smtp,
    webhooks,
)
from tests.notify.fakes import alert
from tests.polling import wait_until

pytestmark = pytest.mark.integration


def sent(env: NotifyEnv, n: int) -> bool:
    return len(env.claims(status="sent")) >= n


def test_critical_alerts_reach_every_destination_once_and_high_ones_none(
    notify_env: NotifyEnv, hooks: Hooks, smtp_server: SmtpServer
) -> None:
    settings = notify_env.with_notify(**smtp(smtp_server))
    environ = {**webhooks(hooks, a="/hooks/a/T0K3N", b="/hooks/b/T0K3N"), **SMTP_ENV}
    critical = alert(1)
    device = alert(
        2, rule="DEVICE_SHARING", entity_type="device", entity_id="d_77", user_id=None,
        card_last4=None, card_token=None, details={"distinct_users": 5, "count": 9, "threshold": 3},
    )  # fmt: skip
    high = alert(3, rule="VELOCITY", severity="HIGH")
    resent = alert(1, detected_at="2026-11-21T22:45:00.000Z")  # the job's at-least-once copy
    notify_env.send(critical, high, device)
    with notifier_thread(settings, environ) as st:
        wait_until(lambda: sent(notify_env, 6), 60, "2 alerts sent to 3 destinations")
        notify_env.send(resent)
        wait_until(lambda: st.duplicate_skipped >= 3, 30, "the re-sent copy skipped everywhere")
    for path in ("/hooks/a/T0K3N", "/hooks/b/T0K3N"):
        assert hooks.count_ok(path, critical["alert_id"]) == 1
        assert hooks.count_ok(path, device["alert_id"]) == 1
        assert hooks.received(path, high["alert_id"]) == []
    inbox = smtp_server.inbox
    assert inbox.count(critical["alert_id"]) == 1 and inbox.count(device["alert_id"]) == 1
    assert inbox.count(high["alert_id"]) == 0
    assert all(m.tls and m.authenticated for m in inbox.mails)
    assert inbox.mails[0].rcpt_tos == ["oncall@example.com"]
    text = hooks.received("/hooks/a/T0K3N", critical["alert_id"])[0].payload["text"]
    assert "CRITICAL CARD_TESTING on card •••• 1234" in text
    assert critical["card_token"] not in text
    assert f"fraudctl query alerts --id {critical['alert_id']}" in text
    assert (st.sent, st.below_min_severity, st.dead_lettered) == (6, 1, 0)
    claim = notify_env.claims(_id=f"{critical['alert_id']}|email")[0]
    assert (claim["status"], claim["attempts"]) == ("sent", 1) and claim["sent_at"]


def test_a_restarted_notifier_and_a_full_replay_resend_nothing(
    notify_env: NotifyEnv, hooks: Hooks
) -> None:
    environ = webhooks(hooks, a="/hooks/a")
    alerts = [alert(i) for i in (1, 2, 3)]
    notify_env.send(*alerts)
    with notifier_thread(notify_env.settings, environ):
        wait_until(lambda: sent(notify_env, 3), 60, "3 alerts sent")
    assert len(hooks.received()) == 3
    # restarted, same group: nothing to read, nothing sent; then the job re-sends alert 2
    with notifier_thread(notify_env.settings, environ) as st:
        notify_env.send(alert(2, detected_at="2026-11-21T23:00:00.000Z"))
        wait_until(lambda: st.duplicate_skipped >= 1, 30, "the re-sent alert skipped")
    assert st.sent == 0
    # a fresh group reads the whole topic again (as after a reset or a resubmitted job)
    replay = notify_env.with_notify(consumer_group=f"t_notify_{notify_env.suffix}_replay")
    with notifier_thread(replay, environ) as st:
        wait_until(lambda: st.seen >= 4, 60, "the replay to read all 4 records")
    assert st.sent == 0 and st.duplicate_skipped >= 3
    assert len(hooks.received()) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_429_with_retry_after_then_success_and_the_metrics(
    notify_env: NotifyEnv, hooks: Hooks
) -> None:
    a = alert(1)
    hooks.script[("/hooks/a", a["alert_id"])] = [(429, {"Retry-After": "1"})]
    port = _free_port()
    settings = notify_env.with_notify(metrics_port=port)
    notify_env.send(a, alert(2, severity="LOW"))
    with notifier_thread(settings, webhooks(hooks, a="/hooks/a")):
        wait_until(lambda: sent(notify_env, 1), 60, "the alert sent after the 429")
        metrics = f"http://127.0.0.1:{port}/metrics"
        lag = f'fraud_notify_consumer_lag{{topic="{notify_env.topic}"}} 0.0'

        def scraped() -> str | None:
            text = requests.get(metrics, timeout=5).text
            return text if lag in text else None

        text = wait_until(scraped, 40, "the lag gauge at 0")
    posts = hooks.received("/hooks/a", a["alert_id"])
    assert [p.status for p in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.95  # Retry-After: 1 honoured
    assert notify_env.claims(status="sent")[0]["attempts"] == 2
    for line in (
        'fraud_notify_notifications_total{destination="a",outcome="retried"} 1.0',
        'fraud_notify_notifications_total{destination="a",outcome="sent"} 1.0',
        'fraud_notify_notifications_total{destination="a",outcome="dead_lettered"} 0.0',
        'fraud_notify_notifications_total{destination="a",outcome="duplicate_skipped"} 0.0',
        'fraud_notify_alerts_seen_total{result="notify"} 1.0',
        'fraud_notify_alerts_seen_total{result="below_min_severity"} 1.0',
    ):
        assert line in text, line


def test_500_twice_then_success(notify_env: NotifyEnv, hooks: Hooks) -> None:
    a = alert(1)
    hooks.script[("/hooks/a", a["alert_id"])] = [(500, {}), (500, {})]
    notify_env.send(a)
    with notifier_thread(notify_env.settings, webhooks(hooks, a="/hooks/a")) as st:
        wait_until(lambda: sent(notify_env, 1), 60, "the alert sent after two 500s")
    posts = hooks.received("/hooks/a", a["alert_id"])
    assert [p.status for p in posts] == [500, 500, 200]
    gaps = [b.at - p.at for p, b in pairwise(posts)]
    assert gaps[0] >= 0.19 and gaps[1] >= 0.39  # back-off 200 ms, then 400 ms
    claim = notify_env.claims()[0]
    assert (claim["status"], claim["attempts"], claim["last_error"]) == (
        "sent",
        3,
        "http_500:error",
    )
    assert (st.retried, st.sent) == (2, 1)


def test_404_and_a_refused_address_are_dead_lettered_and_never_retried(
    notify_env: NotifyEnv, hooks: Hooks, smtp_server: SmtpServer
) -> None:
    smtp_server.inbox.refuse.add("gone@example.com")
    settings = notify_env.with_notify(**smtp(smtp_server, "gone@example.com"))
    environ = {**webhooks(hooks, a="/hooks/a"), **SMTP_ENV}
    bad, later = alert(1), alert(2)
    hooks.script[("/hooks/a", bad["alert_id"])] = [(404, {})]
    notify_env.send(bad, later)
    with notifier_thread(settings, environ) as st:
        wait_until(lambda: len(notify_env.dead_letters()) >= 3, 60, "three dead letters")
        # the destination goes on with the next alert: the first is settled, not retried
        wait_until(lambda: hooks.count_ok("/hooks/a", later["alert_id"]) == 1, 30, "next alert")
    assert len(hooks.received("/hooks/a", bad["alert_id"])) == 1
    letters = {d["_id"]: d for d in notify_env.dead_letters()}
    hook_letter = letters[f"{bad['alert_id']}|a"]
    assert hook_letter["reason"] == "http_404:no_service" and hook_letter["attempts"] == 1
    assert hook_letter["alert"]["alert_id"] == bad["alert_id"]
    for a in (bad, later):
        mail_letter = letters[f"{a['alert_id']}|email"]
        assert mail_letter["reason"].startswith("recipients_refused:smtp_550")
    assert smtp_server.inbox.mails == []
    assert notify_env.claims(_id=f"{bad['alert_id']}|a")[0]["status"] == "dead_lettered"
    assert (st.dead_lettered, st.retried) == (3, 0)
