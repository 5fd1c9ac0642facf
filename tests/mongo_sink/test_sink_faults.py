"""Fault injection: kill -9 of the sink mid-stream, MongoDB (FerretDB) down for 20 s."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from stack.layout import Layout
from tests.mongo_sink.conftest import Env, SinkProcess, make_alert, make_stat
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def alert_ids(env: Env) -> list[str]:
    return [d["_id"] for d in env.db[env.settings.mongo.alerts_collection].find({}, {"_id": 1})]


class Feeder:
    """Sends `n` alerts at about `rate` per second from a thread."""

    def __init__(self, env: Env, n: int, rate: float) -> None:
        self.env, self.n, self.rate = env, n, rate
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        for i in range(self.n):
            a = make_alert(i)
            self.env.send(self.env.alerts_topic, a["entity_id"], a)
            self.sent = i + 1
            ahead = (i + 1) / self.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)  # pacing the producer, not waiting for a condition
        self.env.flush()

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(300)


def test_kill_9_mid_stream_then_restart_gives_exactly_the_expected_documents(
    sink_env: Env, tmp_path: Path
) -> None:
    n = 6000
    config = sink_env.config_file(tmp_path / "sink.yaml")
    sink_env.send_stats([make_stat(i) for i in range(200)])
    with Feeder(sink_env, n, rate=1000):
        sink = SinkProcess(config, tmp_path / "sink1.log")
        try:
            wait_until(lambda: len(alert_ids(sink_env)) >= 1500, 90, "1500 alerts written")
            sink.kill9()
        finally:
            if sink.alive():
                sink.kill9()
        at_kill = len(alert_ids(sink_env))
        assert at_kill < n, "the kill must land mid-stream"
        restarted = SinkProcess(config, tmp_path / "sink2.log")
        try:
            wait_until(lambda: len(alert_ids(sink_env)) >= n, 180, "every alert after restart")
            wait_until(
                lambda: sink_env.count(sink_env.settings.mongo.window_stats_collection) >= 200,
                60,
                "every window stat",
            )
            assert restarted.terminate() == 0
        finally:
            if restarted.alive():
                restarted.kill9()
    ids = alert_ids(sink_env)
    assert len(ids) == n and sorted(ids) == sorted(make_alert(i)["alert_id"] for i in range(n))
    m = sink_env.settings.mongo
    assert sink_env.count(m.window_stats_collection) == 200
    assert sink_env.count(m.dead_letters_collection) == 0
    assert "sink stopped" in restarted.text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnFerretDB:
    """A FerretDB of this test only (same binary as the stack's), so stopping it for 20 s
    does not disturb other tests using the shared one."""

    def __init__(self, settings: Settings, state: Path, log: Path) -> None:
        self.binary = Layout.from_settings(settings).ferretdb_bin
        if not self.binary.exists():
            pytest.skip(f"FerretDB binary not built: {self.binary}")
        self.port = _free_port()
        self.state, self.log = state, log
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), "--listen-addr", f"127.0.0.1:{self.port}"]
        cmd += ["--state-dir", str(self.state), "--log-level", "error"]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_until(self._listening, 30, "FerretDB listening")

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


@pytest.fixture
def own_ferretdb(live_stack: Settings, tmp_path: Path) -> Iterator[OwnFerretDB]:
    fdb = OwnFerretDB(live_stack, tmp_path / "ferretdb", tmp_path / "ferretdb.log")
    fdb.start()
    yield fdb
    with contextlib.suppress(Exception):
        fdb.stop()


def test_ferretdb_down_for_20_s_while_alerts_flow_loses_nothing(
    live_stack: Settings, unique_name: str, own_ferretdb: OwnFerretDB, tmp_path: Path
) -> None:
    env = Env(live_stack, unique_name, mongo_uri=own_ferretdb.uri)
    env.create_topics()
    n = 4000
    try:
        sink = SinkProcess(env.config_file(tmp_path / "sink.yaml"), tmp_path / "sink.log")
        try:
            with Feeder(env, n, rate=100):  # 40 s of alerts
                wait_until(lambda: len(alert_ids(env)) >= 300, 60, "alerts flowing")
                own_ferretdb.stop()
                outage_end = time.monotonic() + 20
                while time.monotonic() < outage_end:  # the outage: the sink must stay up
                    assert sink.alive(), f"sink died while MongoDB was down:\n{sink.text()}"
                    time.sleep(0.5)
                own_ferretdb.start()
            wait_until(lambda: len(alert_ids(env)) >= n, 120, "every alert after the outage")
            assert sink.alive()
            assert sink.terminate() == 0
        finally:
            if sink.alive():
                sink.kill9()
        ids = alert_ids(env)
        assert len(ids) == n and set(ids) == {make_alert(i)["alert_id"] for i in range(n)}
        log = sink.text()
        assert "MongoDB unavailable" in log and "MongoDB back" in log
        # bounded noise: one warning, then a reminder every 30 s at most
        assert log.count("MongoDB still unavailable") <= 2, log
    finally:
        env.drop()
