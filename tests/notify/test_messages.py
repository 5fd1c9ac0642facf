"""What a notification says: masked card, reasons, link; never a card token or number."""

from __future__ import annotations

from config import load_settings
from notify.messages import email, masked_card, reasons, render, scrub, webhook_payload
from tests.notify.fakes import alert

NOTIFY = load_settings().notify


def test_card_alert_shows_rule_severity_masked_card_amount_reasons_time_and_query() -> None:
    a = alert(7)
    note = render(a, NOTIFY)
    assert note.subject == "[fraud] CRITICAL CARD_TESTING on card •••• 1234"
    assert note.text.splitlines() == [
        "[fraud] CRITICAL CARD_TESTING on card •••• 1234",
        "user: u_102",
        "amount: 250.00",
        "reasons: probes=3, charge_amount=250, probe_under=2, charge_over=200",
        "event time: 2026-11-21T22:40:18.123Z",
        f"alert: {a['alert_id']}",
        f"query: fraudctl query alerts --id {a['alert_id']}",
    ]
    assert a["card_token"] not in note.text and a["entity_id"] not in note.text
    assert note.command == f"fraudctl query alerts --id {a['alert_id']}"
    assert note.url is None


def test_device_alert_names_the_device_and_no_card() -> None:
    a = alert(
        1, rule="DEVICE_SHARING", entity_type="device", entity_id="d_77", user_id=None,
        card_last4=None, card_token=None, amount=812.5,
        details={"distinct_users": 5, "count": 9, "threshold": 3},
    )  # fmt: skip
    note = render(a, NOTIFY)
    assert note.subject == "[fraud] CRITICAL DEVICE_SHARING on device d_77"
    assert "••••" not in note.text and "user:" not in note.text
    assert "reasons: distinct_users=5, count=9, threshold=3" in note.text


def test_masked_card_never_echoes_more_than_four_digits() -> None:
    assert masked_card("1234") == "•••• 1234"
    assert masked_card(42) == "•••• 0042"
    for bad in ("4111111111111111", "12345", "12a4", None, True):
        assert masked_card(bad) == "••••"


def test_reasons_list_of_later_risk_score_alerts_follows_the_details() -> None:
    a = alert(
        3, rule="RISK_SCORE", score=0.97, model_version=4, details={"threshold": 0.8},
        reasons=["amount far above the card's usual", {"feature": "geo_speed", "weight": 0.4}],
    )  # fmt: skip
    assert reasons(a) == [
        "threshold=0.8",
        "amount far above the card's usual",
        "feature=geo_speed weight=0.4",
    ]
    text = render(a, NOTIFY).text
    assert "score: 0.970 (model 4)" in text


def test_card_numbers_and_tokens_in_details_are_never_rendered() -> None:
    a = alert(4, details={"note": "card 4111111111111111 seen", "card_token": "secret-token"})
    text = render(a, NOTIFY).text
    assert "4111111111111111" not in text and "secret-token" not in text
    assert "note=card [redacted] seen" in text
    assert scrub("id 123456789012") == "id [redacted]"


def test_link_templates_are_configurable_and_url_quoted() -> None:
    s = load_settings(
        notify={
            "link_template": "see {rule} {alert_id}",
            "url_template": "https://fraud.example/alerts/{alert_id}?sev={severity}",
        }
    ).notify
    note = render(alert(5, alert_id="a/b c"), s)
    assert note.command == "see CARD_TESTING a/b c"
    assert note.url == "https://fraud.example/alerts/a%2Fb%20c?sev=CRITICAL"
    assert f"link: {note.url}" in note.text


def test_webhook_payload_is_text_plus_blocks_escaped_for_slack() -> None:
    s = load_settings(notify={"url_template": "http://host/alerts/{alert_id}"}).notify
    a = alert(6, details={"from_city": "<Oakland & Co>"})
    note = render(a, s)
    payload = webhook_payload(note, "CRITICAL", blocks=True)
    assert set(payload) == {"text", "blocks"}
    assert "&lt;Oakland &amp; Co&gt;" in payload["text"]
    section, context = payload["blocks"]
    assert section["text"]["text"].startswith(":rotating_light: *[fraud] CRITICAL CARD_TESTING")
    assert (
        context["elements"][0]["text"]
        == f"<http://host/alerts/{a['alert_id']}|open alert {a['alert_id']}>"
    )
    assert webhook_payload(note, "CRITICAL", blocks=False) == {"text": payload["text"]}


def test_block_text_is_cut_to_slacks_limit() -> None:
    note = render(alert(8, details={"long": "x" * 5000}), NOTIFY)
    payload = webhook_payload(note, "CRITICAL", blocks=True)
    assert len(payload["blocks"][0]["text"]["text"]) <= 3000
    assert "x" * 4000 in payload["text"]


def test_email_has_subject_recipients_and_a_stable_message_id() -> None:
    note = render(alert(9), NOTIFY)
    msg = email(note, "fraud@example.com", ["a@example.com", "b@example.com"], "email")
    assert msg["Subject"] == note.subject
    assert msg["To"] == "a@example.com, b@example.com"
    assert msg["Message-ID"] == f"<{note.alert_id}.email@fraudctl.notify>"
    assert "•••• 1234" in msg.get_content()
