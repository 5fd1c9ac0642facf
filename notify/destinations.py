"""Where notifications go: Slack-compatible incoming webhooks and e-mail over SMTP.

A destination makes one attempt per `send` and says what came of it (notify.retry: Sent,
Transient, Permanent); retrying, rate limiting and the once-only claim are notify.delivery's.
Nothing here logs or returns a webhook URL or a credential: reasons are status codes, SMTP
replies and exception class names.
"""

from __future__ import annotations

import datetime as dt
import re
import smtplib
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import requests
from pydantic import SecretStr

from config.notify import NotifySettings, SmtpSettings
from notify import messages
from notify.retry import Outcome, Permanent, Sent, Transient, parse_retry_after
from notify.secrets import (
    EMAIL_DESTINATION,
    WebhookTarget,
    smtp_credentials,
    webhook_targets,
)

# response bodies worth quoting in a reason: Slack's error codes (`no_service`, `invalid_token`)
_ERROR_CODE_BODY = re.compile(r"^[a-z_]{1,60}$")


class Destination(Protocol):
    """One place notifications go; `name` keys its claims, dead letters and metrics."""

    name: str
    kind: str

    def describe(self) -> str:
        """What to show in logs (a masked URL, a host): never a secret."""
        ...

    def send(self, note: messages.Notification, alert: dict[str, Any]) -> Outcome:
        """One attempt."""
        ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def classify_http(status: int, retry_after: str | None, body: str, now: dt.datetime) -> Outcome:
    """2xx sent; 408, 429 and 5xx retried (with the server's Retry-After); any other status
    (3xx: redirects are not followed, 4xx) permanent."""
    reason = f"http_{status}"
    code = body.strip()
    if _ERROR_CODE_BODY.fullmatch(code):
        reason += f":{code}"
    if 200 <= status < 300:
        return Sent(reason)
    if status in (408, 429) or 500 <= status < 600:
        return Transient(reason, parse_retry_after(retry_after, now))
    return Permanent(reason)


class Webhook:
    """POST `{"text": ..., "blocks": [...]}` as JSON to one incoming-webhook URL."""

    kind = "webhook"

    def __init__(
        self,
        target: WebhookTarget,
        settings: NotifySettings,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.name = target.name
        self._target = target
        self._blocks = settings.webhook.blocks
        self._timeout_s = settings.webhook.timeout_ms / 1000
        self._now = now
        self._session = requests.Session()

    def describe(self) -> str:
        return f"webhook {self.name} ({self._target.masked})"

    def send(self, note: messages.Notification, alert: dict[str, Any]) -> Outcome:
        payload = messages.webhook_payload(note, str(alert.get("severity")), self._blocks)
        try:
            resp = self._session.post(
                self._target.url, json=payload, timeout=self._timeout_s, allow_redirects=False
            )
        except requests.Timeout as exc:
            # the server may have received it: a retry can deliver a second copy
            return Transient(f"timeout:{type(exc).__name__}")
        except requests.ConnectionError as exc:
            return Transient(f"connection_error:{type(exc).__name__}")
        except requests.RequestException as exc:
            return Permanent(f"request_error:{type(exc).__name__}")
        with resp:
            body = resp.text[:100] if len(resp.content) <= 100 else ""
            return classify_http(
                resp.status_code, resp.headers.get("Retry-After"), body, self._now()
            )

    def close(self) -> None:
        self._session.close()


def _smtp_reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"smtp_{code}:{' '.join(text.split())[:120]}"


def _by_code(code: int, message: bytes | str) -> Outcome:
    """An SMTP reply: 5xx is permanent (a bad address, refused content, failed AUTH), the rest
    (4xx: try later) transient."""
    reason = _smtp_reply(code, message)
    return Permanent(reason) if 500 <= code < 600 else Transient(reason)


class Smtp:
    """One message per alert to every `notify.smtp.to` address, STARTTLS then AUTH."""

    kind = "smtp"

    def __init__(
        self, settings: SmtpSettings, credentials: tuple[str, SecretStr] | None = None
    ) -> None:
        if not settings.host or not settings.from_address or not settings.to:
            raise ValueError("SMTP needs notify.smtp.host, from_address and to")
        self.name = EMAIL_DESTINATION
        self._s = settings
        self._credentials = credentials
        self._context = ssl.create_default_context(cafile=settings.ca_file)

    def describe(self) -> str:
        auth = "AUTH" if self._credentials else "no AUTH"
        tls = "STARTTLS" if self._s.starttls else "plain"
        return f"e-mail via {self._s.host}:{self._s.port} ({tls}, {auth}) to {len(self._s.to)}"

    def send(self, note: messages.Notification, alert: dict[str, Any]) -> Outcome:
        s = self._s
        msg = messages.email(note, s.from_address or "", list(s.to), self.name)
        conn: smtplib.SMTP | None = None
        try:
            conn = smtplib.SMTP(s.host or "", s.port, timeout=s.timeout_ms / 1000)
            conn.ehlo()
            if s.starttls:
                conn.starttls(context=self._context)
                conn.ehlo()
            if self._credentials is not None:
                user, password = self._credentials
                conn.login(user, password.get_secret_value())
            refused = conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            replies = list(exc.recipients.values())
            if any(400 <= code < 500 for code, _ in replies):
                return Transient(_smtp_reply(*replies[0]))
            return Permanent("recipients_refused:" + _smtp_reply(*replies[0]))
        except smtplib.SMTPNotSupportedError as exc:
            return Permanent(f"smtp_not_supported:{' '.join(str(exc).split())[:120]}")
        except smtplib.SMTPResponseException as exc:  # sender, data, AUTH, HELO, connect
            return _by_code(exc.smtp_code, exc.smtp_error)
        except ssl.SSLCertVerificationError as exc:
            return Permanent(f"tls_certificate_rejected:{exc.verify_message}")
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused
            return Transient(f"connection_error:{type(exc).__name__}")
        finally:
            if conn is not None:
                _quit(conn)
        if refused:  # some recipients refused, the others accepted: it went out
            return Sent("refused:" + ",".join(sorted(refused)))
        return Sent("250")

    def close(self) -> None:
        pass


def _quit(conn: smtplib.SMTP) -> None:
    """End the session; the message is already accepted or refused, so errors do not matter."""
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def build(settings: NotifySettings, environ: Mapping[str, str]) -> list[Destination]:
    """The configured destinations: each webhook of FRAUD_NOTIFY_WEBHOOK_URLS, and e-mail
    when notify.smtp.host is set. Raises notify.secrets.SecretsError on a malformed entry."""
    out: list[Destination] = [Webhook(t, settings) for t in webhook_targets(environ)]
    if settings.smtp.host:
        credentials = smtp_credentials(environ)
        if credentials is not None and not settings.smtp.starttls:
            raise ValueError(
                "SMTP AUTH without STARTTLS would send the password in clear: "
                "set notify.smtp.starttls or unset FRAUD_NOTIFY_SMTP_USER"
            )
        out.append(Smtp(settings.smtp, credentials))
    return out
