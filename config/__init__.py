"""Typed configuration: one object feeds the stack, the SQL templates, the producer and the sink.

`load_settings()` reads `config/default.yaml` (or a file given by `--config` / `FRAUD_CONFIG`),
then applies environment overrides (`FRAUD_<SECTION>__<KEY>`, for example
`FRAUD_KAFKA__BOOTSTRAP_SERVERS`). Secrets come only from the environment.
"""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
