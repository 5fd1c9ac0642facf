"""The notifier's secrets, from the environment only, and URL masking for logs.

- FRAUD_NOTIFY_WEBHOOK_URLS: comma-separated webhook URLs, each optionally `name=URL`. A name
  (letters, digits, `_`, `-`) labels the destination in claims, dead letters, logs and metrics;
  without one it is `webhook-` and 8 hex characters of the URL's SHA-256 (stable, and no
  token can be read back from it). Renaming a destination makes it a new one: alerts not yet
  settled would be sent to it again.
- FRAUD_NOTIFY_SMTP_USER, FRAUD_NOTIFY_SMTP_PASSWORD: SMTP AUTH (none when the user is unset).

A URL is a secret (Slack's holds the token in its path): it is only ever shown as
`scheme://host/…` (`mask_url`), and errors about an entry name its position, not its text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import SecretStr

WEBHOOK_ENV = "FRAUD_NOTIFY_WEBHOOK_URLS"
SMTP_USER_ENV = "FRAUD_NOTIFY_SMTP_USER"
SMTP_PASSWORD_ENV = "FRAUD_NOTIFY_SMTP_PASSWORD"
EMAIL_DESTINATION = "email"
_NAME = re.compile(r"^([A-Za-z0-9_-]{1,40})=(.*)$", re.DOTALL)


class SecretsError(ValueError):
    """A malformed secret in the environment; the message never holds the secret."""


def mask_url(url: str) -> str:
    """`https://hooks.slack.com/…`: scheme and host (and port) only."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unreadable URL>"
    return f"{parts.scheme or '?'}://{host}{port}/…"


@dataclass(frozen=True)
class WebhookTarget:
    """One webhook destination; its repr shows the masked URL only."""

    name: str
    url: str = field(repr=False)

    @property
    def masked(self) -> str:
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"WebhookTarget(name={self.name!r}, url={self.masked!r})"


def webhook_targets(environ: Mapping[str, str]) -> list[WebhookTarget]:
    """The webhooks of FRAUD_NOTIFY_WEBHOOK_URLS (none when unset or empty)."""
    raw = environ.get(WEBHOOK_ENV, "")
    targets: list[WebhookTarget] = []
    for pos, item in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not item:
            continue
        named = _NAME.match(item)
        name, url = (named.group(1), named.group(2).strip()) if named else (None, item)
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise SecretsError(f"{WEBHOOK_ENV}: entry {pos} is not an http(s) URL")
        name = name or "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:8]
        if name == EMAIL_DESTINATION or any(t.name == name for t in targets):
            raise SecretsError(f"{WEBHOOK_ENV}: entry {pos}: destination name {name!r} is taken")
        targets.append(WebhookTarget(name, url))
    return targets


def smtp_credentials(environ: Mapping[str, str]) -> tuple[str, SecretStr] | None:
    """(user, password) for SMTP AUTH, or None when FRAUD_NOTIFY_SMTP_USER is unset."""
    user = environ.get(SMTP_USER_ENV)
    if not user:
        return None
    password = environ.get(SMTP_PASSWORD_ENV)
    if password is None:
        raise SecretsError(f"{SMTP_USER_ENV} is set but {SMTP_PASSWORD_ENV} is not")
    return user, SecretStr(password)
