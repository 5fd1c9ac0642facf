"""`fraudctl produce` as a user runs it: files, determinism, summary, Ctrl-C, unreachable broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.producer import rule_checker

FRAUDCTL = str(Path(sys.executable).with_name("fraudctl"))
SIM = ["--start-time", "2026-11-21T00:00:00Z", "--speedup", "60", "--rate", "3000"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["FRAUD_CARD_TOKEN_SECRET"] = "cli-test-key"
    env.update(extra)
    return env


def _produce(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FRAUDCTL, "produce", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(**env),
        check=False,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_to_file_is_byte_identical_for_same_seed_and_start(tmp_path: Path) -> None:
    outs = []
    for run in ("a", "b"):
        out, truth = tmp_path / f"{run}.jsonl", tmp_path / f"{run}.truth.jsonl"
        res = _produce(
            *SIM, "--no-throttle", "--count", "4000", "--seed", "5", "--fraud-rate", "0.1",
            "--bad-records", "0.02", "--to-file", str(out), "--truth", str(truth), "--json",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        outs.append((out.read_bytes(), truth.read_bytes(), json.loads(res.stdout)))
    (a, ta, sa), (b, tb, sb) = outs
    assert sa["scenarios"] == sb["scenarios"] and sa["sent"] == sb["sent"]
    assert a == b and ta == tb
    lines = a.splitlines()
    assert len(lines) == sa["sent"] >= 4000
    assert sa["delivered"] == sa["sent"] and sa["failed"] == 0
    assert sum(sa["scenarios"].values()) == sum(1 for t in tb.splitlines() if b'"scenario"' in t)
    assert sa["invalid"] == sum(1 for t in tb.splitlines() if b'"kind":"invalid"' in t) > 0


def test_summary_reports_counts_per_scenario(tmp_path: Path) -> None:
    res = _produce(
        *SIM, "--no-throttle", "--count", "3000", "--fraud-rate", "0.2",
        "--to-file", str(tmp_path / "o.jsonl"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for word in ("produce summary", "sent", "achieved rate", "velocity_burst", "card_testing"):
        assert word in res.stdout


def test_lookalikes_are_produced_labelled_and_counted(tmp_path: Path) -> None:
    """600 cards at 2 events/s of event time for 1 h: cards get a history, look-alikes
    follow; the summary counts them as the truth file holds them, and the help names them."""
    out, truth = tmp_path / "o.jsonl", tmp_path / "t.jsonl"
    args = [
        "--start-time", "2026-11-21T00:00:00Z", "--speedup", "60", "--rate", "120",
        "--no-throttle", "--count", "7200", "--population", "600", "--fraud-rate", "0.02",
        "--lookalike-rate", "0.02", "--to-file", str(out), "--truth", str(truth),
    ]  # fmt: skip
    res = _produce(*args, "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    looks = Counter(r["lookalike_type"] for r in records if r["kind"] == "lookalike")
    assert set(looks) >= {"new_phone", "habitual_big_online"}
    assert summary["lookalikes"] == dict(looks) and summary["lookalike"] == sum(looks.values())
    table = _produce(*args)
    assert "legit look-alikes" in table.stdout and "new_phone" in table.stdout
    helped = subprocess.run(
        [FRAUDCTL, "produce", "--help"],
        capture_output=True,
        text=True,
        env=_env(COLUMNS="400", TERM="dumb"),
        check=True,
    )
    assert "--lookalike-rate" in helped.stdout and "FRAUD_PRODUCER__LOOKALIKE_RATE" in helped.stdout


def test_rate_is_honoured(tmp_path: Path) -> None:
    res = _produce(
        *SIM[:4], "--rate", "400", "--duration", "3", "--to-file", str(tmp_path / "o.jsonl"),
        "--json", "--fraud-rate", "0",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert 300 <= summary["achieved_rate"] <= 440
    assert 900 <= summary["sent"] <= 1300


def test_bad_options_are_refused() -> None:
    res = _produce("--speedup", "10", "--count", "5", "--to-file", "/dev/null")
    assert res.returncode == 2 and "--start-time" in res.stderr
    res = _produce("--scenario-weight", "nope=1", "--count", "5", "--to-file", "/dev/null")
    assert res.returncode == 2 and "velocity_burst" in res.stderr


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_unreachable_broker_fails_fast_and_clearly(client: str) -> None:
    """The broker check gives up after the configured connect timeout (here 2 s, not 8)."""
    port = _closed_port()
    start = time.monotonic()
    res = _produce(
        "--bootstrap-servers", f"127.0.0.1:{port}", "--client", client, "--count", "10",
        timeout=30, FRAUD_PRODUCER__CONNECT_TIMEOUT_S="2",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert res.returncode == 1
    assert "unreachable" in res.stderr and f"127.0.0.1:{port}" in res.stderr
    assert "within 2 s" in res.stderr
    assert elapsed < 7


def test_ctrl_c_flushes_and_prints_summary(tmp_path: Path) -> None:
    out, truth = tmp_path / "o.jsonl", tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [FRAUDCTL, "produce", *SIM[:4], "--rate", "500", "--fraud-rate", "0.2",
         "--to-file", str(out), "--truth", str(truth), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.stat().st_size > 1500 * 330:
                break
            time.sleep(0.2)
        else:
            pytest.fail("producer wrote nothing within 60 s")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "produce summary" in stdout and "interrupted" in stdout
    lines = out.read_bytes().splitlines()
    txn_ids = {json.loads(line)["transaction_id"] for line in lines}
    scenarios = [json.loads(line) for line in truth.read_text().splitlines()]
    assert any(sc["complete"] for sc in scenarios), "some scenarios completed"
    for sc in scenarios:
        # complete scenarios were sent whole; the ones cut short list what did go out
        assert set(sc["transaction_ids"]) <= txn_ids
        if not sc["complete"]:
            assert 0 < len(sc["transaction_ids"]) < sc["planned_transactions"]
    last = max(rule_checker.parse_ms(json.loads(line)["event_time"]) for line in lines)
    assert last <= time.time() * 1000 + 60_000 * 60, "nothing sent far ahead of its time"
