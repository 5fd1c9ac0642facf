"""Process plumbing for the local stack: pid files, ports, spawning, stopping, log tails.

Every process the project starts is recorded in a pid file; only those pids are ever
signalled. A pid is trusted only while /proc says it is alive and its command line still
carries the marker it was started with (so a recycled pid is never killed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import deque
from pathlib import Path


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True if `pid` runs (not a zombie) and, when given, its command line contains `marker`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
        return False
    if marker is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def read_pids(pid_file: Path) -> list[int]:
    """Pids recorded in a pid file (Flink's daemon script may append several)."""
    try:
        return [int(x) for x in pid_file.read_text().split() if x.strip().isdigit()]
    except FileNotFoundError:
        return []


def live_pids(pid_file: Path, marker: str) -> list[int]:
    """Recorded pids that are alive and ours; a stale pid file is cleaned up on the way.

    A pid that runs something without the marker is not ours, but its entry is only dropped
    once the process is gone: right after a fork (Flink's daemon script) the child still
    shows the shell's command line until it execs java.
    """
    pids = read_pids(pid_file)
    existing = [p for p in pids if pid_alive(p)]
    if pids and not existing:
        pid_file.unlink(missing_ok=True)
    elif existing != pids:
        pid_file.write_text("".join(f"{p}\n" for p in existing))
    return [p for p in existing if pid_alive(p, marker)]


def port_in_use(host: str, port: int) -> bool:
    """True if something accepts connections on host:port.

    Deliberately not a bind probe: right after a kill -9, the dead server's half-closed
    connections still hold its port, which a bind probe reports as taken although the
    restarted server (binding with SO_REUSEADDR) can use it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def spawn(cmd: list[str], log_file: Path, pid_file: Path, env: dict[str, str], cwd: Path) -> int:
    """Start `cmd` detached (own session, survives this process), output appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (its children, theirs, ...), from /proc: what a service started
    itself, such as Flink's Python UDF workers, which outlive a TaskManager killed with -9."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes have used so far, from /proc; a process that has
    ended counts nothing. Benchmarks difference two readings to see what a stretch cost."""
    total_ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total_ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return total_ticks / os.sysconf("SC_CLK_TCK")


def resident_bytes(pids: list[int]) -> int:
    """Memory the processes hold in RAM now (resident set), from /proc; a process that has
    ended counts nothing. What a TaskManager really takes, its Python workers included."""
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(int(fields[21]) * page for fields in map(_stat_fields, pids) if fields)


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...; the name may
    hold spaces and parentheses, so split after its last ')'), or None once the process has
    ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def kill_orphans(pids: list[int]) -> None:
    """SIGKILL what is left of a stopped service's descendants (taken before it was stopped)."""
    for p in pids:
        if pid_alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


def terminate(pids: list[int], marker: str, timeout_s: float = 30.0) -> None:
    """SIGTERM the given pids, wait up to `timeout_s`, then SIGKILL what is left, and their
    descendants that outlived them."""
    below = [c for p in pids if pid_alive(p, marker) for c in descendants(p)]
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        targets = [p for p in pids if pid_alive(p, marker)]
        for p in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(pid_alive(p, marker) for p in targets):
            time.sleep(0.2)
        if not any(pid_alive(p, marker) for p in targets):
            break
    kill_orphans(below)


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    try:
        with open(path, errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except FileNotFoundError:
        return ""
