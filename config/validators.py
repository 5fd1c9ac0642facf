"""Reusable constrained types for config values that end up in SQL, on a command line or in a URL.

Validation here is the first line of defence; the Jinja filters in `jobs/sql/filters.py` escape
again when rendering. A value that fails here never reaches a template.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
# Flink duration strings: "10 s", "5 min", "500 ms", "1 h", "10s".
_DURATION_RE = re.compile(r"^(\d{1,9})\s*(ms|s|min|h|d)$")
_DURATION_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# memory sizes as both Flink and a JVM's -Xmx read them: "8g", "512m", "65536k"
_MEMORY_RE = re.compile(r"^\d{1,9}[kmg]$")


def _topic(value: str) -> str:
    if not _TOPIC_RE.fullmatch(value) or value in {".", ".."}:
        raise ValueError(
            f"{value!r} is not a valid Kafka topic name: use 1-249 characters from "
            "letters, digits, '.', '_' and '-'"
        )
    return value


def _identifier(value: str) -> str:
    if not _IDENT_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid identifier: start with a letter or '_', then letters, "
            "digits or '_' (at most 128 characters)"
        )
    return value


def _host_port(value: str) -> str:
    for part in value.split(","):
        if not _HOSTPORT_RE.fullmatch(part.strip()):
            raise ValueError(f"{value!r} is not a comma-separated list of HOST:PORT")
        port = int(part.rsplit(":", 1)[1])
        if not 0 < port < 65536:
            raise ValueError(f"port {port} in {value!r} is out of range 1-65535")
    return value


def _duration(value: str) -> str:
    if not _DURATION_RE.fullmatch(value.strip()):
        raise ValueError(
            f"{value!r} is not a duration: write a whole number and a unit, "
            "one of ms, s, min, h, d (for example '10 s' or '5 min')"
        )
    return value.strip()


def _memory_size(value: str) -> str:
    if not _MEMORY_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a memory size: write a whole number and one of k, m, g "
            "(for example '8g' or '512m')"
        )
    return value


def _port_range(value: str) -> str:
    m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", value.strip())
    low, high = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, 0)
    if not m or not 0 < low <= high < 65536:
        raise ValueError(
            f"{value!r} is not a port range: write LOW-HIGH (for example '9249-9259') or one "
            "port, within 1-65535"
        )
    return f"{low}-{high}" if high != low else str(low)


def port_range(value: str) -> range:
    """The ports of a validated range such as '9249-9259' (both ends included)."""
    low, _, high = _port_range(value).partition("-")
    return range(int(low), int(high or low) + 1)


def memory_bytes(value: str) -> int:
    """Bytes in a memory size such as '64m'."""
    _memory_size(value)
    return int(value[:-1]) * 1024 ** ("kmg".index(value[-1]) + 1)


def duration_ms(value: str) -> int:
    """Milliseconds in a validated duration string such as '5 min'."""
    m = _DURATION_RE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a duration")
    return int(m.group(1)) * _DURATION_MS[m.group(2)]


TopicName = Annotated[str, AfterValidator(_topic)]
Identifier = Annotated[str, AfterValidator(_identifier)]
HostPort = Annotated[str, AfterValidator(_host_port)]
Duration = Annotated[str, AfterValidator(_duration)]
MemorySize = Annotated[str, AfterValidator(_memory_size)]
Port = Annotated[int, Field(ge=1, le=65535)]
PortRange = Annotated[str, AfterValidator(_port_range)]
PositiveInt = Annotated[int, Field(gt=0)]
