"""`fraudctl stack install | up | down | status | logs`: the local Kafka, Flink and FerretDB."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from fraudctl.cli_common import ConfigOption, JsonOption, console, fail, print_json, print_table
from fraudctl.cli_common import settings as load
from stack import manager
from stack.install import InstallError, install
from stack.layout import Layout
from stack.services import all_services, optional_services

stack_app = typer.Typer(
    help=(
        "Run the local stack: Kafka (KRaft) on 9092, Flink (web UI 8081), FerretDB on 27017, "
        "Prometheus on 9090 (stack.metrics)."
    ),
    no_args_is_help=True,
)


@stack_app.command("install")
def install_cmd(
    config: ConfigOption = None,
    test_clients: Annotated[
        bool, typer.Option("--test-clients", help="Also install kcat and mongosh for tests.")
    ] = False,
) -> None:
    """Download and build what the stack needs (cached; a no-op when done)."""
    s = load(config)
    try:
        install(Layout.from_settings(s), test_clients=test_clients, metrics=s.stack.metrics)
    except InstallError as exc:
        fail(str(exc))


@stack_app.command("up")
def up_cmd(config: ConfigOption = None) -> None:
    """Install what is missing and start every service that is not running (idempotent)."""
    s = load(config)
    try:
        started = manager.up(s)
    except (manager.StackError, InstallError) as exc:
        fail(str(exc))
    if not started:
        console.print("stack already up: nothing to do")
    _print_status(s, as_json=False)


@stack_app.command("down")
def down_cmd(config: ConfigOption = None) -> None:
    """Stop only the processes this project started (by pid)."""
    stopped = manager.down(load(config))
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_app.command("status")
def status_cmd(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Per service: healthy or not, pid, port, log path. Exit 1 if any is unhealthy."""
    if not _print_status(load(config), as_json):
        raise typer.Exit(1)


@stack_app.command("logs")
def logs_cmd(
    service: Annotated[
        str, typer.Argument(help="kafka | ferretdb | jobmanager | taskmanager | prometheus | sink")
    ],
    lines: Annotated[int, typer.Option("-n", "--lines", help="Lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show the end of a service's log."""
    s = load(config)
    layout = Layout.from_settings(s)
    services = {svc.name: svc for svc in all_services(s, layout) + optional_services(s, layout)}
    if service not in services:
        fail(f"unknown service {service!r}; choose one of {', '.join(services)}", code=2)
    path = services[service].log_file
    if not path.exists():
        fail(f"no log yet at {path}")
    if follow:
        subprocess.run(["tail", "-n", str(lines), "-F", str(path)], check=False)
    else:
        typer.echo(services[service].log_tail(lines), nl=False)


def _print_status(s, as_json: bool) -> bool:
    rows = manager.status_dicts(s)
    if as_json:
        print_json(rows)
    else:
        for r in rows:
            r["state"] = "[green]healthy[/]" if r["healthy"] else "[red]down[/]"
        print_table(rows, ["service", "state", "pid", "port", "detail", "log"], title="stack")
    return all(r["healthy"] for r in rows)


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
