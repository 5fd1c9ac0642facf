"""The lake: every accepted transaction and every dead letter, kept as Parquet by the job
(section `lake`), what `fraudctl backtest` reads."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

from config.validators import Duration

# where a lake may live: a local path, or a URI of a Flink filesystem (plugins/ of the cluster)
_SCHEMES = ("file", "s3", "s3a", "s3p", "hdfs", "gs", "abfs", "abfss", "oss")


class LakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # write the lake (the job gains two filesystem sinks: tens of µs of CPU per transaction)
    enabled: bool = True
    # a directory, or a URI such as s3://bucket/fraud-lake (Flink's S3 plugin on the cluster);
    # empty: `lake` beside the local stack's data (`.run/lake`)
    path: str = ""
    # a partition (an hour) gets its _SUCCESS file once the watermark is this far past its end:
    # transactions up to this late still land in it before it is declared complete
    commit_delay: Duration = "1 h"

    @field_validator("path")
    @classmethod
    def _a_path_or_a_filesystem_uri(cls, value: str) -> str:
        m = re.match(r"^([a-z][a-z0-9+.-]*)://", value)
        if m and m.group(1) not in _SCHEMES:
            raise ValueError(f"{value!r}: the scheme must be one of {', '.join(_SCHEMES)}")
        if any(c in value for c in "'\n\r"):
            raise ValueError(f"{value!r} holds a quote or a line break")
        return value
