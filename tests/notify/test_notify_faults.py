"""kill -9 of a `fraudctl notify` process (a) between claim and send, (b) after the send and
before the claim is marked sent: no alert is lost, and at most one is sent twice.

The test-only hook FRAUD_NOTIFY_TEST_PAUSE=after_claim|after_send makes the notifier announce
the point in its log and stop there, so the kill lands exactly where it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notify.conftest import (
    SMTP_ENV,
    Hooks,
    NotifierProcess,
    NotifyEnv,
    SmtpServer,
    smtp,
    webhooks,
)
from tests.notify.fakes import alert
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN_PATH = "/services/T000/B000/S3CR3TT0K3N"


def test_kill_9_between_claim_and_send_loses_nothing_and_sends_nothing_twice(
    notify_env: NotifyEnv, hooks: Hooks, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = notify_env.config_file(
        tmp_path / "notify.yaml", notify_env.with_notify(**smtp(smtp_server))
    )
    environ = {**webhooks(hooks, oncall=TOKEN_PATH), **SMTP_ENV}
    alerts = [alert(i) for i in (1, 2)]
    notify_env.send(*alerts)
    first = NotifierProcess(
        config, tmp_path / "notify1.log", {**environ, "FRAUD_NOTIFY_TEST_PAUSE": "after_claim"}
    )
    try:
        wait_until(
            lambda: first.text().count("test hook: paused after_claim") >= 2,
            60,
            "both destinations paused after claiming",
        )
        first.kill9()
    finally:
        if first.alive():
            first.kill9()
    assert hooks.received() == [] and smtp_server.inbox.mails == []
    assert {c["status"] for c in notify_env.claims()} == {"claimed"}

    second = NotifierProcess(config, tmp_path / "notify2.log", environ)
    try:
        wait_until(lambda: len(notify_env.claims(status="sent")) >= 4, 90, "all 4 sent")
        assert second.terminate() == 0
    finally:
        if second.alive():
            second.kill9()
    for a in alerts:
        assert hooks.count_ok(TOKEN_PATH, a["alert_id"]) == 1
        assert smtp_server.inbox.count(a["alert_id"]) == 1
    taken = notify_env.claims(_id=f"{alerts[0]['alert_id']}|oncall")[0]
    assert taken["takeovers"] == 1
    logs = first.text() + second.text()
    assert "S3CR3TT0K3N" not in logs and "T000" not in logs, "a webhook URL leaked to the log"
    assert f"http://127.0.0.1:{hooks.server.server_address[1]}/…" in logs
    assert "claim left unsettled by a stopped notifier" in second.text()
    assert "notify stopped" in second.text()


def test_kill_9_after_the_send_before_marking_it_sends_at_most_one_duplicate(
    notify_env: NotifyEnv, hooks: Hooks, tmp_path: Path
) -> None:
    config = notify_env.config_file(tmp_path / "notify.yaml")
    environ = webhooks(hooks, oncall=TOKEN_PATH)
    alerts = [alert(i) for i in (1, 2, 3)]
    notify_env.send(*alerts)
    first = NotifierProcess(
        config, tmp_path / "notify1.log", {**environ, "FRAUD_NOTIFY_TEST_PAUSE": "after_send"}
    )
    try:
        wait_until(lambda: "test hook: paused after_send" in first.text(), 60, "the pause")
        assert len(hooks.received()) == 1  # sent, not yet marked
        first.kill9()
    finally:
        if first.alive():
            first.kill9()
    assert notify_env.claims(status="sent") == []

    second = NotifierProcess(config, tmp_path / "notify2.log", environ)
    try:
        wait_until(lambda: len(notify_env.claims(status="sent")) >= 3, 90, "all 3 sent")
        assert second.terminate() == 0
    finally:
        if second.alive():
            second.kill9()
    counts = [hooks.count_ok(TOKEN_PATH, a["alert_id"]) for a in alerts]
    assert all(c >= 1 for c in counts), f"an alert was lost: {counts}"
    assert sum(counts) - len(alerts) <= 1, f"more than one duplicate: {counts}"
    assert counts[0] == 2  # the one in flight at the kill: the documented duplicate
