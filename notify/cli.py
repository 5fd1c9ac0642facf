"""CLI verb of this package (registered on `fraudctl` by fraudctl/app.py):

- `fraudctl notify`  alerts from `fraud_alerts` to webhooks and e-mail, once per alert and
  destination (foreground; SIGTERM/SIGINT stop it cleanly)
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Annotated, Any

import typer

from fraudctl.cli_common import ConfigOption, console, fail, print_table
from fraudctl.cli_common import settings as load_cli_settings
from notify.secrets import SMTP_PASSWORD_ENV, SMTP_USER_ENV, WEBHOOK_ENV, SecretsError


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def notify(
    config: ConfigOption = None,
    min_severity: Annotated[
        str | None,
        typer.Option(
            "--min-severity",
            envvar="FRAUD_NOTIFY__MIN_SEVERITY",
            help="Send alerts at or above this severity: LOW, MEDIUM, HIGH or CRITICAL "
            "(default notify.min_severity, CRITICAL). Env: FRAUD_NOTIFY__MIN_SEVERITY.",
            show_default=False,
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            envvar="FRAUD_NOTIFY__CONSUMER_GROUP",
            help="Kafka consumer group on fraud_alerts (default notify.consumer_group, "
            "fraud-notify). Env: FRAUD_NOTIFY__CONSUMER_GROUP.",
            show_default=False,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="FRAUD_NOTIFY__METRICS_PORT",
            min=0,
            max=65535,
            help="Serve Prometheus metrics on this port, /metrics (default "
            "notify.metrics_port, 0 = off). Env: FRAUD_NOTIFY__METRICS_PORT.",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only check the config and the environment's secrets, print the "
            "destinations (URLs masked) and exit.",
        ),
    ] = False,
) -> None:
    """Send alerts at or above a severity from `fraud_alerts` to webhooks and e-mail, once per
    alert and destination, until SIGTERM/SIGINT.

    Webhook URLs come only from the environment: FRAUD_NOTIFY_WEBHOOK_URLS (comma-separated,
    each `URL` or `name=URL`); SMTP AUTH from FRAUD_NOTIFY_SMTP_USER and
    FRAUD_NOTIFY_SMTP_PASSWORD; the rest from the `notify` config section. See
    docs/notifications.md.
    """
    from notify import destinations as dests
    from notify.consumer import run

    overrides: dict[str, Any] = {}
    if min_severity is not None:
        overrides["min_severity"] = min_severity.upper()
    if group is not None:
        overrides["consumer_group"] = group
    if metrics_port is not None:
        overrides["metrics_port"] = metrics_port
    s = load_cli_settings(config, **({"notify": overrides} if overrides else {}))
    try:
        targets = dests.build(s.notify, os.environ)
    except (SecretsError, ValueError, OSError) as exc:
        fail(str(exc), code=2)
    if check:
        rows = [{"destination": d.name, "kind": d.kind, "where": d.describe()} for d in targets]
        print_table(rows, ["destination", "kind", "where"], title="Notification destinations")
        console.print(f"min severity {s.notify.min_severity}, group {s.notify.consumer_group}")
        if not targets:
            fail(f"no destinations: set {WEBHOOK_ENV} or notify.smtp.host", code=2)
        return
    if not targets:
        fail(
            f"no destinations: set {WEBHOOK_ENV} (webhooks) or notify.smtp.host (e-mail; "
            f"AUTH from {SMTP_USER_ENV}/{SMTP_PASSWORD_ENV})",
            code=2,
        )
    _setup_logging()
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        logging.getLogger("notify").info(
            "%s: finishing the notifications in flight", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run(s, stop, targets)


def register(app: typer.Typer) -> None:
    """Add this package's verbs to `app`."""
    app.command("notify")(notify)
