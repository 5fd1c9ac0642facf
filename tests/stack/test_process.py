"""Unit tests of the pid-file and port plumbing (no services needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from stack.process import (
    cpu_seconds,
    descendants,
    live_pids,
    pid_alive,
    port_in_use,
    resident_bytes,
    spawn,
    tail,
    terminate,
)
from tests.polling import wait_until


def test_pid_alive_checks_the_command_line_marker(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker-xyz"])
    try:
        # bounded: a just-started process may not show its new command line at once
        wait_until(lambda: pid_alive(proc.pid, "marker-xyz"), 10, "the marker to show")
        assert not pid_alive(proc.pid, "some-other-service")
    finally:
        proc.kill()
        proc.wait()
    assert not pid_alive(proc.pid, "marker-xyz")


def test_stale_pid_file_is_cleaned_up(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    pid_file = tmp_path / "svc.pid"
    pid_file.write_text(f"{proc.pid}\n")
    assert live_pids(pid_file, "python") == []
    assert not pid_file.exists()


def test_spawn_records_pid_and_terminate_stops_only_that_pid(tmp_path):
    log, pid_file = tmp_path / "x.log", tmp_path / "x.pid"
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "tm-x"])
    try:
        pid = spawn(
            [
                sys.executable,
                "-c",
                "print('hello', flush=True); import time; time.sleep(30)",
                "tm-x",
            ],
            log,
            pid_file,
            dict(os.environ),
            tmp_path,
        )
        assert live_pids(pid_file, "tm-x") == [pid]
        deadline = time.monotonic() + 10
        while "hello" not in tail(log) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "hello" in tail(log), "the process's output did not reach its log"
        terminate([pid], "tm-x", timeout_s=5)
        assert not pid_alive(pid, "tm-x")
        assert pid_alive(bystander.pid, "tm-x"), "a process we did not record was signalled"
    finally:
        bystander.kill()
        bystander.wait()


def test_port_in_use_sees_a_listener():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)


def test_terminate_also_ends_what_the_process_started(tmp_path):
    # a service that starts a worker of its own and ignores SIGTERM for it, as a TaskManager
    # leaves its Python UDF workers behind when it is killed
    script = "trap '' TERM; sleep 300 & sleep 300 & wait"
    pid = spawn(
        ["bash", "-c", script, "svc-with-workers"],
        tmp_path / "svc.log",
        tmp_path / "svc.pid",
        dict(os.environ),
        tmp_path,
    )
    wait_until(lambda: len(descendants(pid)) == 2, 10, "the two workers to start")
    workers = descendants(pid)
    terminate([pid], "svc-with-workers", timeout_s=2)
    wait_until(lambda: not any(pid_alive(w) for w in [pid, *workers]), 10, "no process left")


def test_cpu_seconds_counts_what_a_busy_process_uses_and_nothing_for_an_idle_one():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen(["sleep", "30"])
    try:
        wait_until(lambda: cpu_seconds([busy.pid]) >= 0.5, 20, "the busy loop to use 0.5 s of CPU")
        assert cpu_seconds([idle.pid]) < 0.1
        assert cpu_seconds([busy.pid, idle.pid]) >= 0.5
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
    assert cpu_seconds([busy.pid]) == 0.0, "an ended process counts nothing"


def test_resident_bytes_counts_what_a_process_holds_in_ram_and_nothing_once_it_ended():
    mb = 1024 * 1024
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(200 * 1024 * 1024); time.sleep(30)"]
    )
    idle = subprocess.Popen(["sleep", "30"])
    try:
        # bytearray() writes its zeros, so the pages are resident once it has run
        wait_until(lambda: resident_bytes([holder.pid]) >= 200 * mb, 20, "200 MB resident")
        assert resident_bytes([idle.pid]) < 50 * mb
        both = resident_bytes([holder.pid, idle.pid])
        assert both >= resident_bytes([holder.pid]) >= 200 * mb
    finally:
        for proc in (holder, idle):
            proc.kill()
            proc.wait()
    assert resident_bytes([holder.pid]) == 0, "an ended process counts nothing"
