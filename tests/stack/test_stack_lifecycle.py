"""The local stack's life cycle against the real processes, on an isolated second stack.

It uses its own ports and directories (only the install cache is shared), so it can kill
and restart services without disturbing the developer's stack or other integration tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymongo
import pytest
import requests
import yaml

from config import load_settings
from config.validators import memory_bytes
from stack import manager
from stack.layout import Layout
from stack.process import pid_alive
from stack.services import TaskManager, all_services
from tests.isolated_stack import free_ports, isolated_stack, scratch_dir
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ["kafka", "ferretdb", "jobmanager", "taskmanager"]


@pytest.fixture
def tmp_path():
    """Per-test dir under .run/ (see tests/isolated_stack.py for why not pytest's)."""
    path = scratch_dir("test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def iso():
    with isolated_stack("iso-") as (settings, config_file, _):
        yield settings, config_file


def _fraudctl(config_file: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("fraudctl")), *args],
        env={**os.environ, "FRAUD_CONFIG": str(config_file)},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _status(config_file: Path) -> dict[str, dict]:
    proc = _fraudctl(config_file, "stack", "status", "--json")
    return {row["service"]: row for row in json.loads(proc.stdout)}


def test_up_starts_every_service_healthy(iso):
    settings, config_file = iso
    proc = _fraudctl(config_file, "stack", "up")
    assert proc.returncode == 0, proc.stderr
    status = _status(config_file)
    assert set(status) == set(SERVICES)
    assert all(row["healthy"] for row in status.values()), status
    assert all(row["pid"] for row in status.values())
    assert status["kafka"]["port"] == settings.stack.ports.kafka
    assert Path(status["kafka"]["log"]).stat().st_size > 0, "the broker's log is empty"


def test_topics_are_listed_by_kcat(iso):
    settings, _ = iso
    out = subprocess.run(
        ["kcat", "-L", "-J", "-b", settings.kafka.bootstrap_servers],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    topics = {t["topic"]: len(t["partitions"]) for t in json.loads(out)["topics"]}
    for name, partitions in settings.kafka.topic_partitions().items():
        assert topics.get(name) == partitions, (name, topics)


def test_flink_is_2_2_with_at_least_two_slots(iso):
    settings, _ = iso
    ov = requests.get(f"http://127.0.0.1:{settings.stack.ports.flink_rest}/overview", timeout=5)
    body = ov.json()
    assert body["flink-version"].startswith("2.2.")
    assert body["slots-total"] >= 2


def test_taskmanager_jvm_keeps_the_configured_young_generation_share(iso):
    """Flink starts its JVMs with -XX:+IgnoreUnrecognizedVMOptions: a healthy TaskManager
    does not prove that the JVM took the flag, so ask the JVM for its value."""
    settings, config_file = iso
    pid = _status(config_file)["taskmanager"]["pid"]
    flags = subprocess.run(
        ["jcmd", str(pid), "VM.flags", "-all"], capture_output=True, text=True, timeout=30
    ).stdout
    line = next(ln for ln in flags.splitlines() if " G1NewSizePercent " in ln)
    assert line.split("=")[1].split()[0] == str(settings.stack.taskmanager_young_percent)
    assert "{command line}" in line


def test_taskmanager_network_memory_is_the_configured_size(iso):
    settings, _ = iso
    rest = f"http://127.0.0.1:{settings.stack.ports.flink_rest}"
    (tm,) = requests.get(f"{rest}/taskmanagers", timeout=5).json()["taskmanagers"]
    expected = memory_bytes(settings.stack.taskmanager_network_memory)
    assert tm["memoryConfiguration"]["networkMemory"] == expected


def test_mongo_ping_and_round_trip(iso):
    settings, _ = iso
    client = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{settings.stack.ports.mongo}/?directConnection=true",
        serverSelectionTimeoutMS=5000,
    )
    assert client.admin.command("ping")["ok"] == 1.0
    coll = client["stack_test"]["round_trip"]
    coll.insert_one({"_id": "k1", "amount": 42.5})
    assert coll.find_one({"_id": "k1"}) == {"_id": "k1", "amount": 42.5}


def test_second_up_is_a_no_op(iso):
    settings, config_file = iso
    before = {k: v["pid"] for k, v in _status(config_file).items()}
    assert manager.up(settings) == []
    after = {k: v["pid"] for k, v in _status(config_file).items()}
    assert before == after


@pytest.mark.parametrize("service", SERVICES)
def test_kill_9_is_reported_and_up_restores(iso, service):
    settings, config_file = iso
    pid = manager.kill_service(settings, service, signal.SIGKILL)
    status = wait_until(
        lambda: (s := _status(config_file)) and not s[service]["healthy"] and s,
        30,
        f"status to report {service} down",
    )
    assert status[service]["pid"] is None
    proc = _fraudctl(config_file, "stack", "up")
    assert proc.returncode == 0, proc.stderr
    status = wait_until(
        lambda: (s := _status(config_file)) and all(r["healthy"] for r in s.values()) and s,
        60,
        "every service healthy again",
    )
    assert status[service]["pid"] not in (None, pid)


def test_stale_pid_file_does_not_block_start(iso):
    settings, config_file = iso
    svc = next(
        s for s in all_services(settings, Layout.from_settings(settings)) if s.name == "ferretdb"
    )
    manager.kill_service(settings, "ferretdb", signal.SIGKILL)
    wait_until(lambda: not _status(config_file)["ferretdb"]["healthy"], 30, "ferretdb down")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    svc.pid_file.write_text(f"{dead.pid}\n")  # a pid file naming a process that is gone
    assert manager.up(settings) == ["ferretdb"]
    assert _status(config_file)["ferretdb"]["healthy"]


def test_port_taken_by_another_process_gives_a_clear_error(iso, tmp_path):
    _, config_file = iso
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        cfg = yaml.safe_load(config_file.read_text())
        cfg["stack"]["ports"]["mongo"] = port
        cfg["stack"]["data_dir"] = str(tmp_path / "data")
        cfg["stack"]["run_dir"] = str(tmp_path / "pids")
        cfg["stack"]["ports"]["kafka"], cfg["stack"]["ports"]["kafka_controller"] = free_ports(2)
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump(cfg))
        try:
            proc = _fraudctl(other, "stack", "up", timeout=180)
        finally:
            manager.down(load_settings(other))
    assert proc.returncode != 0
    assert f"port {port}" in proc.stderr and "already in use" in proc.stderr


def test_failed_start_reports_log_tail_and_exit_code(iso, tmp_path):
    _, config_file = iso
    cfg = yaml.safe_load(config_file.read_text())
    cfg["stack"]["data_dir"] = str(tmp_path / "data")
    cfg["stack"]["run_dir"] = str(tmp_path / "pids")
    cfg["stack"]["log_dir"] = str(tmp_path / "logs")
    cfg["stack"]["ports"]["kafka"], cfg["stack"]["ports"]["kafka_controller"] = free_ports(2)
    cfg["stack"]["ports"]["mongo"] = free_ports(1)[0]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ferretdb").write_text("a file where FerretDB wants its directory")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    started = time.monotonic()
    try:
        proc = _fraudctl(bad, "stack", "up", timeout=240)
    finally:
        manager.down(load_settings(bad))
    assert proc.returncode != 0
    assert time.monotonic() - started < 200
    assert "ferretdb" in proc.stderr and "Last lines of" in proc.stderr


def test_down_leaves_no_project_process(iso):
    settings, config_file = iso
    pids = [row["pid"] for row in _status(config_file).values() if row["pid"]]
    assert pids
    proc = _fraudctl(config_file, "stack", "down")
    assert proc.returncode == 0, proc.stderr
    data_dir = str(settings.stack.data_dir)
    survivors = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            # zombies (killed children of this test process, not yet reaped) do not run
            if (data_dir in cmd or int(entry.name) in pids) and pid_alive(int(entry.name)):
                survivors.append((entry.name, cmd[:120]))
    assert survivors == []
    assert all(not row["healthy"] for row in _status(config_file).values())


def test_two_taskmanagers_start_register_and_a_lost_one_is_restored(iso, tmp_path):
    """stack.taskmanagers: 2 runs two TaskManager JVMs; `up` starts only a missing one."""
    settings, config_file = iso
    config = yaml.safe_load(config_file.read_text())
    config["stack"]["taskmanagers"] = 2
    two = tmp_path / "two-taskmanagers.yaml"
    two.write_text(yaml.safe_dump(config))
    rest = f"http://{settings.flink.jobmanager}"

    tm = TaskManager(load_settings(**config), Layout.from_settings(settings))

    def registered() -> int:
        return requests.get(f"{rest}/overview", timeout=5).json()["taskmanagers"]

    try:
        proc = _fraudctl(two, "stack", "up")
        assert proc.returncode == 0, proc.stderr
        assert registered() == 2
        status = _status(two)["taskmanager"]
        assert status["healthy"] and "2 TaskManager(s)" in status["detail"], status
        first, second = tm.pids()
        os.kill(second, signal.SIGKILL)
        wait_until(lambda: not pid_alive(second), 30, "the killed TaskManager to exit")
        proc = _fraudctl(two, "stack", "up")
        assert proc.returncode == 0, proc.stderr
        pids = tm.pids()
        assert len(pids) == 2 and first in pids and second not in pids
        wait_until(lambda: registered() == 2, 60, "two TaskManagers registered again")
    finally:
        proc = _fraudctl(two, "stack", "down")
    assert proc.returncode == 0, proc.stderr
    assert tm.pids() == []
