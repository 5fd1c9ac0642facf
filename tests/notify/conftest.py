"""Harness for the notifier's live tests: a private topic, database and group per test on the
live stack; a real HTTP server capturing webhook POSTs (answering 429/500/404 on demand); a real
SMTP server (aiosmtpd) with STARTTLS on a self-signed certificate and AUTH; the notifier in a
thread or as a `python -m fraudctl.app notify` subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from pymongo import MongoClient

from config import Settings, load_settings
from fraudctl.topics import TopicError, delete_topics, ensure_topics
from notify.consumer import NotifyStats, run
from notify.destinations import build

SMTP_USER, SMTP_PASSWORD = "notifier", "s3cret-pw"
ALERT_ID_IN_TEXT = re.compile(r"alert: (\S+)")


# --- webhook receiver ---------------------------------------------------------------------


@dataclass
class Post:
    path: str
    alert_id: str | None
    payload: dict[str, Any]
    at: float  # time.monotonic()
    status: int


@dataclass
class Hooks:
    """An HTTP server in a thread. `script[(path, alert_id)]` (or `script[path]`) is a list of
    answers (status, headers) used up in order; then 200."""

    server: ThreadingHTTPServer
    posts: list[Post] = field(default_factory=list)
    script: dict[Any, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def answer(self, path: str, alert_id: str | None) -> tuple[int, dict[str, str]]:
        with self.lock:
            for key in ((path, alert_id), path):
                if self.script.get(key):
                    return self.script[key].pop(0)
        return 200, {}

    def received(self, path: str | None = None, alert_id: str | None = None) -> list[Post]:
        with self.lock:
            return [
                p
                for p in self.posts
                if (path is None or p.path == path) and (alert_id is None or p.alert_id == alert_id)
            ]

    def count_ok(self, path: str, alert_id: str) -> int:
        return sum(1 for p in self.received(path, alert_id) if p.status == 200)


def _handler(hooks_ref: dict[str, Hooks]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hooks = hooks_ref["hooks"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            payload = json.loads(body)
            found = ALERT_ID_IN_TEXT.search(payload.get("text", ""))
            alert_id = found.group(1) if found else None
            status, headers = hooks.answer(self.path, alert_id)
            with hooks.lock:
                hooks.posts.append(Post(self.path, alert_id, payload, time.monotonic(), status))
            reply = b"ok" if status == 200 else b"no_service" if status == 404 else b"error"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    ref: dict[str, Hooks] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    ref["hooks"] = Hooks(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ref["hooks"]
    server.shutdown()
    server.server_close()


# --- SMTP server ----------------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool

    @property
    def alert_id(self) -> str | None:
        found = ALERT_ID_IN_TEXT.search(self.content.decode("utf-8", "replace"))
        return found.group(1) if found else None


class Inbox:
    """aiosmtpd handler: keeps every message; refuses the addresses in `refuse` with 550."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.mails.append(
                Mail(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content or envelope.content,
                    session.ssl is not None,
                    bool(session.authenticated),
                )
            )
        return "250 Message accepted"

    def count(self, alert_id: str) -> int:
        with self.lock:
            return sum(1 for m in self.mails if m.alert_id == alert_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, made now with the openssl CLI."""
    cert, key = tmp / "smtp-cert.pem", tmp / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    inbox: Inbox


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok)

    inbox = Inbox()
    port = _free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticator, auth_required=True, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield SmtpServer("127.0.0.1", port, cert, inbox)
    controller.stop()


# --- one test's topic, database, group ----------------------------------------------------


class NotifyEnv:
    def __init__(self, base: Settings, suffix: str, **notify: Any) -> None:
        self.suffix = suffix
        self.topic = f"t_notify_alerts_{suffix}"
        self.overrides: dict[str, Any] = {
            "kafka": {"topics": {**base.kafka.topics.model_dump(), "fraud_alerts": self.topic}},
            "mongo": {"database": f"t_notify_{suffix}", "server_timeout_ms": 2000},
            "notify": {
                "consumer_group": f"t_notify_{suffix}",
                "batch_timeout_ms": 200,
                "claim_lease_ms": 2000,
                "retry_initial_ms": 200,
                "retry_max_ms": 1000,
                "retry_total_ms": 20_000,
                "rate_per_s": 50,
                "rate_burst": 50,
                **notify,
            },
        }
        self.settings = load_settings(**self.overrides)
        self.producer = Producer({"bootstrap.servers": base.kafka.bootstrap_servers})
        self.client = MongoClient(self.settings.mongo.uri, serverSelectionTimeoutMS=5000)
        ensure_topics(self.settings.kafka.bootstrap_servers, {self.topic: 2})

    def with_notify(self, **notify: Any) -> Settings:
        """These settings with more `notify` keys (a destination's SMTP server, a group)."""
        over = {**self.overrides, "notify": {**self.overrides["notify"], **notify}}
        return load_settings(**over)

    @property
    def db(self) -> Any:
        return self.client[self.settings.mongo.database]

    def claims(self, **flt: Any) -> list[dict[str, Any]]:
        return list(self.db[self.settings.notify.claims_collection].find(flt))

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(self.db[self.settings.notify.dead_letters_collection].find())

    def send(self, *alerts: dict[str, Any]) -> None:
        for a in alerts:
            self.producer.produce(self.topic, key=a["entity_id"], value=json.dumps(a))
        assert self.producer.flush(30) == 0

    def config_file(self, path: Path, settings: Settings | None = None) -> Path:
        data = (settings or self.settings).model_dump(
            mode="json", exclude={"card_token_secret_value"}
        )
        path.write_text(yaml.safe_dump(data))
        return path

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.drop_database(self.settings.mongo.database)
        with contextlib.suppress(TopicError):
            delete_topics(self.settings.kafka.bootstrap_servers, [self.topic])
        self.client.close()


@pytest.fixture
def notify_env(live_stack: Settings, unique_name: str) -> Iterator[NotifyEnv]:
    env = NotifyEnv(live_stack, unique_name)
    yield env
    env.drop()


@contextlib.contextmanager
def notifier_thread(settings: Settings, environ: dict[str, str]) -> Iterator[NotifyStats]:
    """`run()` in a thread with the destinations of `environ`; stopped when the block ends.
    Yields the live totals (updated after each batch, final after the stop)."""
    stop = threading.Event()
    latest = NotifyStats()
    holder: dict[str, Any] = {}

    def _copy(s: NotifyStats) -> None:
        for k in ("seen", "below_min_severity", "invalid", "sent", "retried", "dead_lettered",
                  "duplicate_skipped", "batches"):  # fmt: skip
            setattr(latest, k, getattr(s, k))
        latest.by_destination = {d: dict(v) for d, v in s.by_destination.items()}

    def _target() -> None:
        holder["stats"] = run(settings, stop, build(settings.notify, environ), on_batch=_copy)

    thread = threading.Thread(target=_target, name="notifier", daemon=True)
    thread.start()
    try:
        yield latest
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "notifier thread did not stop within 60 s"
        if "stats" in holder:
            _copy(holder["stats"])


class NotifierProcess:
    """`python -m fraudctl.app notify --config FILE` with `env` added; output to a log file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str]) -> None:
        self.log = log
        full = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fraudctl.app", "notify", "--config", str(config)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=full,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


# --- what a test's notifier is given ------------------------------------------------------

SMTP_ENV = {"FRAUD_NOTIFY_SMTP_USER": SMTP_USER, "FRAUD_NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD}


def webhooks(hooks: Hooks, **paths: str) -> dict[str, str]:
    """FRAUD_NOTIFY_WEBHOOK_URLS naming each destination after its keyword."""
    urls = ",".join(f"{name}={hooks.url(path)}" for name, path in paths.items())
    return {"FRAUD_NOTIFY_WEBHOOK_URLS": urls}


def smtp(server: SmtpServer, *to: str) -> dict:
    """The `notify` keys that send e-mail through `server` to `to`."""
    return {
        "smtp": {
            "host": server.host,
            "port": server.port,
            "ca_file": str(server.ca_file),
            "from_address": "fraud@example.com",
            "to": list(to or ["oncall@example.com"]),
        }
    }
