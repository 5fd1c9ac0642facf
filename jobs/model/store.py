"""The model store: one directory per trained version under config `scoring.models_path`.

    <models_path>/<version>/model.txt   the LightGBM model (text dump)
    <models_path>/<version>/meta.json   what it was trained on and how well it did (train.py)

Versions count from 1; version 0 is the heuristic of udfs/risk_score.py, which needs no files and
is always valid. A version is written whole or not at all: into a hidden temporary directory of
the store, then renamed to its number (a rename onto an existing version fails, so two trainings
at once take two numbers). A written version never changes: promote and roll back choose among
them (jobs/model/cli.py).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from config import Settings
from udfs.behaviour_features import MODEL_FEATURES
from udfs.risk_model import (
    HEURISTIC,
    META_FILE,
    MODEL_FILE,
    ModelLoadError,
    check_model,
    load_model,
    resolve_models_path,
)

_INCOMING = ".incoming-"


class ModelStoreError(ValueError):
    """A version is missing or cannot be used; the message names it and why."""


# what `model show 0` and `model list` say of version 0
HEURISTIC_META: dict[str, Any] = {
    "version": HEURISTIC,
    "source": "heuristic: the weighted sum of udfs/risk_score.py (config job.rules.risk_score)",
}


class ModelStore:
    """The versions under `root` (a directory; created on the first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = resolve_models_path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        return cls(settings.scoring.models_path)

    def path(self, version: int) -> Path:
        return self.root / str(int(version))

    def _numbered(self) -> list[int]:
        if not self.root.is_dir():
            return []
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    def versions(self) -> list[int]:
        """The trained versions (directories holding a model file), oldest first."""
        return [v for v in self._numbered() if (self.path(v) / MODEL_FILE).is_file()]

    def next_version(self) -> int:
        """The number the next write takes: one past every numbered directory."""
        return max(self._numbered(), default=HEURISTIC) + 1

    def meta(self, version: int) -> dict[str, Any]:
        """A version's meta.json; ModelStoreError when it has none or it is not JSON."""
        if int(version) == HEURISTIC:
            return dict(HEURISTIC_META)
        path = self.path(version) / META_FILE
        if not path.is_file():
            raise ModelStoreError(f"model {version}: no {META_FILE} in {self.path(version)}")
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelStoreError(f"model {version}: {path} is not readable JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise ModelStoreError(f"model {version}: {path} is not a JSON object")
        return meta

    def write(self, model_text: str, meta: dict[str, Any]) -> int:
        """Store a trained model as the next version, atomically; return its number (also in
        the stored meta's `version`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        incoming = Path(tempfile.mkdtemp(prefix=_INCOMING, dir=self.root))
        try:
            (incoming / MODEL_FILE).write_text(model_text)
            while True:
                version = self.next_version()
                (incoming / META_FILE).write_text(
                    json.dumps({**meta, "version": version}, indent=2, default=str) + "\n"
                )
                try:
                    os.rename(incoming, self.path(version))
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        continue  # another training took this number meanwhile
                    raise
                return version
        finally:
            if incoming.exists():
                shutil.rmtree(incoming, ignore_errors=True)

    def validate(self, version: int) -> dict[str, Any]:
        """Check that `version` can score: it exists, its meta lists MODEL_FEATURES, its model
        file loads with those features and scores a sample row. Return its meta;
        ModelStoreError says what is wrong. Version 0 (the heuristic) is always valid."""
        version = int(version)
        if version == HEURISTIC:
            return self.meta(version)
        if version < 0 or version not in self._numbered():
            known = ", ".join(map(str, self.versions())) or "none"
            raise ModelStoreError(
                f"model {version}: no such version in {self.root} (trained versions: {known}; "
                "0 is the heuristic)"
            )
        meta = self.meta(version)
        if list(meta.get("features") or []) != list(MODEL_FEATURES):
            raise ModelStoreError(
                f"model {version}: its meta.json lists the features {meta.get('features')}, "
                f"not the job's MODEL_FEATURES {list(MODEL_FEATURES)} (udfs/behaviour_features.py)"
            )
        try:
            check_model(load_model(self.root, version))
        except ModelLoadError as exc:
            raise ModelStoreError(str(exc)) from None
        return meta
