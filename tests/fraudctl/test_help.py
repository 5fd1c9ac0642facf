"""`fraudctl --help` explains every command and every option and argument of each."""

from __future__ import annotations

import typer

from fraudctl.app import app


def _commands(command, path: tuple[str, ...]):
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


def test_every_command_option_and_argument_has_help():
    root = typer.main.get_command(app)
    commands = list(_commands(root, ("fraudctl",)))
    assert len(commands) > 10  # the walk reached the sub-commands
    missing = [
        " ".join(path) + (f" {param.name}" if param else "")
        for path, command in commands
        for param in [None, *command.params]
        if (param is None and not (command.help or command.short_help))
        or (param is not None and param.name != "help" and not getattr(param, "help", None))
    ]
    assert missing == []
