"""Pure: what a notification says about one alert, as plain text, Slack blocks and an e-mail.

What it shows: rule, severity, the entity (a card only as `•••• 1234` from `card_last4`: never
`card_token`, which is also a card alert's `entity_id`; a device by its id), user, amount, score,
reasons (the alert's `details` as key=value, then its `reasons` list when it has one), event
time, the alert id and the configured link. Every rendered value has its runs of 12-19 digits
removed, so a card number slipped into a field by mistake never reaches a chat or a mailbox.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from config.notify import NotifySettings

MASK = "••••"
_LAST4 = re.compile(r"^\d{4}$")
_CARD_DIGITS = re.compile(r"\d{12,19}")
# never rendered, wherever they appear among details or reasons
_HIDDEN_KEYS = frozenset({"card_token", "card_number", "card"})
# Slack's limit for one section block's text; the whole `text` may be far longer
_BLOCK_TEXT_MAX = 3000
_SEVERITY_MARK = {"CRITICAL": ":rotating_light:", "HIGH": ":warning:"}


@dataclass(frozen=True)
class Notification:
    """One alert rendered for every kind of destination."""

    alert_id: str
    subject: str  # one line: e-mail subject, chat headline
    text: str  # plain text, several lines
    command: str  # the link template filled in (default: a `fraudctl query` command)
    url: str | None  # the URL template filled in, when configured


def scrub(text: str) -> str:
    """`text` without runs of 12-19 digits (what a card number would look like)."""
    return _CARD_DIGITS.sub("[redacted]", text)


def masked_card(card_last4: Any) -> str:
    """`•••• 1234`; just `••••` when last4 is not exactly four digits (never echo more)."""
    if isinstance(card_last4, int) and not isinstance(card_last4, bool):
        card_last4 = f"{card_last4:04d}"
    if isinstance(card_last4, str) and _LAST4.fullmatch(card_last4):
        return f"{MASK} {card_last4}"
    return MASK


def entity(alert: dict[str, Any]) -> str:
    """What the alert is about: `card •••• 1234` or `device d_77` (never a card token)."""
    if alert.get("entity_type") == "device":
        return f"device {scrub(str(alert.get('entity_id') or '?'))}"
    return f"card {masked_card(alert.get('card_last4'))}"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else repr(value)
    return json.dumps(value, sort_keys=True, default=str)


def key_values(mapping: dict[str, Any]) -> list[str]:
    """`key=value` per entry (in the alert's order), hidden keys left out."""
    return [f"{k}={_value(v)}" for k, v in mapping.items() if str(k) not in _HIDDEN_KEYS]


def reasons(alert: dict[str, Any]) -> list[str]:
    """The alert's `details` as key=value, then each entry of its `reasons` list (RISK_SCORE
    alerts of later job versions): a string as is, an object as key=value pairs."""
    out: list[str] = []
    details = alert.get("details")
    if isinstance(details, dict):
        out.extend(key_values(details))
    extra = alert.get("reasons")
    if isinstance(extra, str):
        extra = [extra]
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                out.append(" ".join(key_values(item)))
            elif item is not None:
                out.append(_value(item))
    return [scrub(r) for r in out if r]


def amount(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.2f}"
    return None


def fill(template: str, alert: dict[str, Any], *, url: bool = False) -> str:
    """A link template (validated by config.notify) with the alert's fields; URL-quoted for URLs."""
    fields = {k: str(alert.get(k) or "") for k in ("alert_id", "rule", "severity")}
    if url:
        fields = {k: quote(v, safe="") for k, v in fields.items()}
    return template.format(**fields)


def render(alert: dict[str, Any], settings: NotifySettings) -> Notification:
    """The notification for `alert` (a decoded `fraud_alerts` value)."""
    alert_id = str(alert["alert_id"])
    rule = scrub(str(alert.get("rule") or "?"))
    severity = scrub(str(alert.get("severity") or "?"))
    subject = f"[fraud] {severity} {rule} on {entity(alert)}"
    lines = [subject]
    user = alert.get("user_id")
    if user:
        lines.append(f"user: {scrub(str(user))}")
    amt = amount(alert.get("amount"))
    if amt is not None:
        lines.append(f"amount: {amt}")
    score = alert.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        version = alert.get("model_version")
        lines.append(f"score: {score:.3f}" + (f" (model {version})" if version is not None else ""))
    why = reasons(alert)
    if why:
        lines.append("reasons: " + ", ".join(why))
    if alert.get("event_time"):
        lines.append(f"event time: {scrub(str(alert['event_time']))}")
    lines.append(f"alert: {alert_id}")
    command = fill(settings.link_template, alert)
    lines.append(f"query: {command}")
    url = fill(settings.url_template, alert, url=True) if settings.url_template else None
    if url:
        lines.append(f"link: {url}")
    return Notification(alert_id, subject, "\n".join(lines), command, url)


def _mrkdwn(text: str) -> str:
    """Slack's escaping for text it would otherwise read as links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(note: Notification, severity: str, blocks: bool) -> dict[str, Any]:
    """The JSON of a Slack-compatible incoming-webhook POST: `text`, and `blocks` if wanted."""
    payload: dict[str, Any] = {"text": _mrkdwn(note.text)}
    if not blocks:
        return payload
    mark = _SEVERITY_MARK.get(severity, ":information_source:")
    head, _, body = note.text.partition("\n")
    section = f"{mark} *{_mrkdwn(head)}*\n{_mrkdwn(body)}"
    if len(section) > _BLOCK_TEXT_MAX:
        section = section[: _BLOCK_TEXT_MAX - 1] + "…"
    out: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": section}}]
    if note.url:
        link = f"<{note.url}|open alert {_mrkdwn(note.alert_id)}>"
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    payload["blocks"] = out
    return payload


def email(note: Notification, sender: str, to: list[str], destination: str) -> EmailMessage:
    """The e-mail for `note`. Its Message-ID is derived from the alert and destination, so a
    mail client shows the rare re-sent copy (see docs/notifications.md) as the same message."""
    msg = EmailMessage()
    msg["Subject"] = note.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Message-ID"] = f"<{quote(note.alert_id, safe='')}.{destination}@fraudctl.notify>"
    msg.set_content(note.text + "\n")
    return msg
