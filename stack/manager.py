"""Bring the local stack up and down, report its status, create the contract's topics."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from rich.console import Console

from config import Settings
from fraudctl import topics
from stack.install import install
from stack.layout import Layout
from stack.process import (
    descendants,
    kill_orphans,
    pid_alive,
    port_in_use,
    read_pids,
    terminate,
)
from stack.services import JobManager, Service, TaskManager, all_services, optional_services

console = Console(stderr=True)


class StackError(RuntimeError):
    """A service could not be started; the message carries the cause and its log's tail."""


@dataclass
class ServiceStatus:
    service: str
    healthy: bool
    pid: int | None
    port: int | None
    detail: str
    log: str


def status(settings: Settings) -> list[ServiceStatus]:
    layout = Layout.from_settings(settings)
    out = []
    extra = [svc for svc in optional_services(settings, layout) if svc.pids()]
    for svc in all_services(settings, layout) + extra:
        pids = svc.pids()
        health = svc.health() if pids else None
        out.append(
            ServiceStatus(
                service=svc.name,
                healthy=bool(pids) and health is not None and health.ok,
                pid=pids[0] if pids else None,
                port=svc.port,
                detail=health.detail if health else "not running",
                log=str(svc.log_file),
            )
        )
    return out


def _wait_healthy(svc: Service, timeout_s: float, grace_s: float = 10.0) -> None:
    """Poll until healthy; fail fast (with the log's tail) if the process is gone."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if svc.pids():
            if svc.health().ok:
                return
        elif time.monotonic() - start > grace_s:  # Flink's scripts write the pid a bit later
            recorded = read_pids(svc.pid_file)
            raise StackError(
                f"{svc.name} exited during start-up (recorded pids: {recorded or 'none'}). "
                f"Last lines of {svc.log_file}:\n{svc.log_tail()}"
            )
        time.sleep(0.5)
    raise StackError(
        f"{svc.name} did not become healthy within {timeout_s:.0f} s "
        f"({svc.health().detail}). Last lines of {svc.log_file}:\n{svc.log_tail()}"
    )


def _check_ports_free(svc: Service, host: str, grace_s: float = 10.0) -> None:
    """Refuse to start over a port someone else holds. A just-killed JVM keeps its listening
    sockets while its threads wind down, so a busy port gets `grace_s` to come free."""
    deadline = time.monotonic() + grace_s
    for port in svc.ports_to_check:
        while port_in_use(host, port):
            if time.monotonic() > deadline:
                raise StackError(
                    f"port {port} on {host} is already in use by another process, so "
                    f"{svc.name} cannot start. Stop that process or choose another port in "
                    f"config (stack.ports)."
                )
            time.sleep(0.2)


def up(settings: Settings, install_missing: bool = True) -> list[str]:
    """Start every service that is not running; returns the names started (empty: no-op)."""
    layout = Layout.from_settings(settings)
    if install_missing:
        install(layout, metrics=settings.stack.metrics)
    layout.ensure_dirs()
    started = []
    services = all_services(settings, layout)
    down_now = {svc.name for svc in services if not svc.pids()}
    cluster_started = False
    for svc in services:
        if svc.name not in down_now:
            if isinstance(svc, TaskManager) and len(svc.pids()) < settings.stack.taskmanagers:
                svc.start()  # some of them run: start the missing ones
            if not svc.health().ok:  # running but not ready yet (e.g. just restarted)
                _wait_healthy(svc, settings.stack.start_timeout_s)
            continue
        if isinstance(svc, TaskManager) and cluster_started:
            continue  # start-cluster.sh already started it
        _check_ports_free(svc, settings.stack.host)
        with console.status(f"starting {svc.name} ..."):
            if isinstance(svc, JobManager) and "taskmanager" in down_now:
                svc.start_cluster()  # the whole cluster, with Flink's own start-cluster.sh
                cluster_started = True
            else:
                svc.start()
            _wait_healthy(svc, settings.stack.start_timeout_s)
        console.print(f"[green]✓[/] {svc.name} healthy: {svc.health().detail}")
        started.append(svc.name)
    tm = next(s for s in services if isinstance(s, TaskManager))
    if cluster_started:
        _wait_healthy(tm, settings.stack.start_timeout_s)
        console.print(f"[green]✓[/] taskmanager healthy: {tm.health().detail}")
        started.append("taskmanager")
    ensure_topics(settings)
    return started


def down(settings: Settings) -> list[str]:
    """Stop every process the project started (by pid, newest first); returns their names."""
    layout = Layout.from_settings(settings)
    stopped = []
    for svc in reversed(all_services(settings, layout) + optional_services(settings, layout)):
        pids = svc.pids()
        if pids:
            terminate(pids, svc.marker)
            stopped.append(svc.name)
        svc.pid_file.unlink(missing_ok=True)
    return stopped


def start_optional(settings: Settings, name: str) -> bool:
    """Start an optional service (the sink) unless it runs; True if it was started."""
    layout = Layout.from_settings(settings)
    svc = next(s for s in optional_services(settings, layout) if s.name == name)
    if svc.pids():
        return False
    svc.start()
    _wait_healthy(svc, settings.stack.start_timeout_s, grace_s=2.0)
    return True


def kill_service(
    settings: Settings, name: str, sig: int, wait_s: float = 60.0, only_one: bool = False
) -> int:
    """Send `sig` to one service's processes (fault injection in tests; `only_one`: to the
    first of them, e.g. one of several TaskManagers) and wait until they are gone, so their
    ports are free for a restart; returns the first pid."""
    import os

    layout = Layout.from_settings(settings)
    services = all_services(settings, layout) + optional_services(settings, layout)
    svc = next(s for s in services if s.name == name)
    pids = svc.pids()
    if not pids:
        raise StackError(f"{name} is not running")
    if only_one:
        pids = pids[:1]
    below = [c for p in pids for c in descendants(p)]
    for p in pids:
        os.kill(p, sig)
    deadline = time.monotonic() + wait_s
    host = settings.stack.host
    # gone means: no live process and no listening socket left (a dying JVM holds its
    # sockets for a while after its main thread is reported dead)
    while any(pid_alive(p, svc.marker) for p in pids) or any(
        port_in_use(host, port) for port in svc.ports_to_check
    ):
        if time.monotonic() > deadline:
            raise StackError(f"{name} (pid {pids[0]}) still runs {wait_s:.0f} s after {sig!r}")
        time.sleep(0.1)
    kill_orphans(below)  # a TaskManager killed with -9 leaves its Python workers behind
    return pids[0]


def ensure_topics(settings: Settings) -> None:
    """Create the contract's topics with their configured partition counts (existing: kept)."""
    kafka = settings.kafka
    plain = {n: p for n, p in kafka.topic_partitions().items() if n != kafka.topics.rules}
    try:
        topics.ensure_topics(kafka.bootstrap_servers, plain)
        topics.ensure_topics(
            kafka.bootstrap_servers,
            {kafka.topics.rules: kafka.topic_partitions()[kafka.topics.rules]},
            config=topics.RULES_TOPIC_CONFIG,
        )
    except topics.TopicError as exc:
        raise StackError(str(exc)) from exc


def status_dicts(settings: Settings) -> list[dict]:
    return [asdict(s) for s in status(settings)]


__all__ = ["JobManager", "StackError", "down", "ensure_topics", "kill_service", "status", "up"]
