"""The root settings object and its loader."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from config.card_token import SECRET_ENV
from config.flink import FlinkSettings
from config.job import JobSettings
from config.kafka import KafkaSettings
from config.lake import LakeSettings
from config.mongo import MongoSettings
from config.notify import NotifySettings
from config.producer import ProducerSettings
from config.scoring import ScoringSettings
from config.stack import PROJECT_ROOT, StackSettings

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")


class ConfigError(ValueError):
    """A config file or environment value is invalid; the message names each bad key."""


class Settings(BaseSettings):
    """Everything configurable. Env overrides: FRAUD_<SECTION>__<KEY>, e.g. FRAUD_MONGO__URI."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUD_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    stack: StackSettings = Field(default_factory=StackSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    flink: FlinkSettings = Field(default_factory=FlinkSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    job: JobSettings = Field(default_factory=JobSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    # Key of the card-number HMAC. From the environment only (FRAUD_CARD_TOKEN_SECRET);
    # when unset, `card_token_secret()` uses a random per-checkout key under stack.run_dir.
    card_token_secret_value: SecretStr | None = Field(default=None, alias=SECRET_ENV)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings layers file, environment and explicit overrides itself (init kwargs)
        return (init_settings,)

    def lake_uri(self) -> str:
        """Where the lake is, as a URI Flink's filesystems take (a local path made absolute)."""
        if "://" in self.lake.path:
            return self.lake.path.rstrip("/")
        path = Path(self.lake.path) if self.lake.path else Path(self.stack.data_dir).parent / "lake"
        return self.stack.resolve(path).as_uri()

    def card_token_secret(self) -> str:
        """The HMAC key for card tokens: the environment's, else a generated local one."""
        if self.card_token_secret_value is not None:
            return self.card_token_secret_value.get_secret_value()
        path = self._generated_secret_path()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip()

    def card_token_secret_file(self) -> Path:
        """A file only its owner can read that holds `card_token_secret()`: what the local
        TaskManagers get (FRAUD_CARD_TOKEN_SECRET_FILE) instead of the key itself, which
        Apache Beam would log with the Python workers' environment."""
        key = self.card_token_secret()
        if self.card_token_secret_value is None:
            return self._generated_secret_path()
        # the key came from the environment: a file of its own, so that the generated key
        # stays what it was for runs without it
        path = self._generated_secret_path().with_name("card_token_secret.from_env")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return path

    def _generated_secret_path(self) -> Path:
        return self.stack.resolve(self.stack.run_dir).parent / "card_token_secret"


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def environment_overrides(overrides: dict[str, Any]) -> dict[str, str]:
    """The `FRAUD_<SECTION>__<KEY>[__<SUB>]` environment variables that give a child process
    (another `fraudctl` verb) the same section-dict `overrides` as `load_settings`."""
    env: dict[str, str] = {}

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                add(f"{prefix}__{key.upper()}", sub)
        else:
            env[prefix] = str(value)

    for section, values in overrides.items():
        add(f"FRAUD_{section.upper()}", values)
    return env


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` over it, nested mappings merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load YAML config (default `config/default.yaml`), the environment over it, and
    `overrides` over both.

    `overrides` are section dicts (CLI flags, tests), merged key by key, so a flag wins over
    an exported FRAUD_* variable and keeps the file's other keys of its section.
    Raises ConfigError with one line per bad key.
    """
    path = Path(path or os.environ.get("FRAUD_CONFIG") or DEFAULT_CONFIG)
    if not path.is_absolute() and not path.exists():
        path = PROJECT_ROOT / path
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    try:
        environment = EnvSettingsSource(Settings)()
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration (environment): {exc}") from exc
    try:
        return Settings(**deep_merge(deep_merge(data, environment), overrides))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(path))) from exc
