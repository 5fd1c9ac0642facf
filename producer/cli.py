"""CLI verbs of this package (registered on `fraudctl` by jobs/cli.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's verbs to `app`."""
