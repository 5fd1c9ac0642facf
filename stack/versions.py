"""The pinned versions of every external component (stack/versions.toml)."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.toml")


@cache
def versions() -> dict[str, str]:
    """Component name -> pinned version."""
    return tomllib.loads(VERSIONS_FILE.read_text())
