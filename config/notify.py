"""`fraudctl notify`: who is told about which alerts, and how hard it tries (section `notify`).

Only non-secret settings live here. Webhook URLs carry their token (Slack puts it in the path)
and SMTP credentials are secrets: both come from the environment only (see notify/secrets.py:
FRAUD_NOTIFY_WEBHOOK_URLS, FRAUD_NOTIFY_SMTP_USER, FRAUD_NOTIFY_SMTP_PASSWORD).
"""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from config.rules import Severity
from config.validators import Identifier, PositiveInt

# the fields of an alert a link template may name
LINK_FIELDS = frozenset({"alert_id", "rule", "severity"})


def _template(value: str) -> str:
    """A `str.format` template naming only LINK_FIELDS (checked now, not at the first alert)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid template: {exc}") from exc
    unknown = sorted({n for n in names if n not in LINK_FIELDS})
    if unknown or any(not n for n in names):
        raise ValueError(
            f"{value!r} names {unknown or ['{}']}; a template may name only "
            f"{', '.join('{' + f + '}' for f in sorted(LINK_FIELDS))}"
        )
    return value


def _address(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain or any(c in value for c in " \r\n,<>"):
        raise ValueError(f"{value!r} is not an e-mail address (name@domain)")
    return value.strip()


LinkTemplate = Annotated[str, AfterValidator(_template)]
Address = Annotated[str, AfterValidator(_address)]


class SmtpSettings(BaseModel):
    """E-mail over SMTP; off while `host` is unset. User and password: environment only."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    # upgrade the connection with STARTTLS before AUTH (refused: the server must offer it)
    starttls: bool = True
    # CA bundle (PEM) that signs the server's certificate; default: the system's
    ca_file: str | None = None
    from_address: Address | None = None
    to: list[Address] = Field(default_factory=list)
    timeout_ms: PositiveInt = 10_000

    @model_validator(mode="after")
    def _complete_when_on(self) -> SmtpSettings:
        if self.host and (not self.from_address or not self.to):
            raise ValueError("notify.smtp.host is set: set from_address and at least one `to`")
        return self


class WebhookSettings(BaseModel):
    """Slack-compatible incoming webhooks; the URLs: FRAUD_NOTIFY_WEBHOOK_URLS only."""

    model_config = ConfigDict(extra="forbid")

    # send Block Kit `blocks` beside the plain `text` (Slack renders them; others use `text`)
    blocks: bool = True
    timeout_ms: PositiveInt = 10_000


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # alerts at or above this severity are sent (LOW < MEDIUM < HIGH < CRITICAL)
    min_severity: Severity = "CRITICAL"
    consumer_group: str = "fraud-notify"
    # where a consumer group with no committed offset starts on fraud_alerts
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    batch_size: PositiveInt = 100
    batch_timeout_ms: PositiveInt = 500
    # in mongo.database: one claim per alert and destination, and the permanent failures
    claims_collection: Identifier = "notify_claims"
    dead_letters_collection: Identifier = "notify_dead_letters"
    # a claim whose owner has not renewed it for this long is taken over (the owner died)
    claim_lease_ms: PositiveInt = 30_000
    # token bucket per destination: sustained messages per second, and the burst allowed
    rate_per_s: float = Field(default=1.0, gt=0)
    rate_burst: PositiveInt = 10
    # retries on 429, 5xx, SMTP 4xx and connection errors: exponential back-off from
    # retry_initial_ms doubling up to retry_max_ms (a longer Retry-After is honoured), for at
    # most retry_total_ms in all; then the notification is dead-lettered (`retries_exhausted`)
    retry_initial_ms: PositiveInt = 500
    retry_max_ms: PositiveInt = 30_000
    retry_total_ms: PositiveInt = 600_000
    # what a message points to, `{alert_id}`, `{rule}`, `{severity}` filled in; url_template
    # (e.g. "https://fraud.example/alerts/{alert_id}") adds a link when set
    link_template: LinkTemplate = "fraudctl query alerts --id {alert_id}"
    url_template: LinkTemplate | None = None
    # Prometheus metrics on this port (all interfaces); 0 = off
    metrics_port: int = Field(default=0, ge=0, le=65535)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)

    @model_validator(mode="after")
    def _retry_bounds(self) -> NotifySettings:
        if self.retry_initial_ms > self.retry_max_ms:
            raise ValueError("notify.retry_initial_ms must not exceed notify.retry_max_ms")
        if self.claims_collection == self.dead_letters_collection:
            raise ValueError("notify.claims_collection and dead_letters_collection must differ")
        return self
