"""The model store (jobs/model/store.py): versions written whole, listed, read back, checked."""

from __future__ import annotations

import json
import os

import pytest

from config.stack import PROJECT_ROOT
from jobs.model.store import ModelStore, ModelStoreError
from udfs.behaviour_features import MODEL_FEATURES


def test_a_written_version_has_its_model_and_meta(store, small_model):
    assert store.versions() == [1]
    meta = store.meta(1)
    assert meta["version"] == 1
    assert meta["data_digest"] == small_model.meta["data_digest"]
    assert (store.path(1) / "model.txt").read_text() == small_model.model_text()
    assert store.validate(1) == meta


def test_versions_count_up_and_leave_no_temporary_directory(store, small_model):
    assert store.write(small_model.model_text(), small_model.meta) == 2
    assert store.next_version() == 3
    assert store.versions() == [1, 2]
    assert sorted(p.name for p in store.root.iterdir()) == ["1", "2"]


def test_a_number_taken_meanwhile_is_skipped(store, small_model, monkeypatch):
    # another training renames its version 2 into place between our choice and our rename
    real_rename = os.rename
    taken = []

    def rename(src, dst):
        if not taken:
            taken.append(dst)
            (store.root / "2").mkdir()
            (store.root / "2" / "model.txt").write_text("theirs")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    assert store.write(small_model.model_text(), small_model.meta) == 3
    assert (store.root / "2" / "model.txt").read_text() == "theirs"
    assert store.meta(3)["version"] == 3


def test_a_failed_write_leaves_nothing(store, small_model, monkeypatch):
    def broken(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", broken)
    with pytest.raises(OSError, match="No space"):
        store.write(small_model.model_text(), small_model.meta)
    assert sorted(p.name for p in store.root.iterdir()) == ["1"]
    assert store.versions() == [1]


def test_an_empty_store_has_no_versions_and_starts_at_1(tmp_path):
    store = ModelStore(tmp_path / "nothing-yet")
    assert store.versions() == []
    assert store.next_version() == 1


def test_version_0_is_the_heuristic_and_always_valid(tmp_path):
    store = ModelStore(tmp_path)
    assert store.validate(0)["version"] == 0
    assert "heuristic" in store.meta(0)["source"]


def test_a_relative_path_is_under_the_project():
    assert ModelStore("models").root == PROJECT_ROOT / "models"


def test_a_missing_version_is_refused_by_name(store):
    with pytest.raises(ModelStoreError, match=r"model 5: no such version .*trained versions: 1"):
        store.validate(5)


def test_a_missing_model_file_is_refused(store):
    (store.path(1) / "model.txt").unlink()
    with pytest.raises(ModelStoreError, match=r"model 1: .*model.txt does not exist"):
        store.validate(1)


def test_a_corrupt_model_file_is_refused(store):
    (store.path(1) / "model.txt").write_text("tree\nversion=v4\nnum_class=banana\n")
    with pytest.raises(ModelStoreError, match=r"model 1: .* does not load"):
        store.validate(1)


def test_a_corrupt_meta_is_refused(store):
    (store.path(1) / "meta.json").write_text("{not json")
    with pytest.raises(ModelStoreError, match="not readable JSON"):
        store.validate(1)


def test_a_meta_with_other_features_is_refused(store):
    meta = store.meta(1)
    meta["features"] = [*MODEL_FEATURES[:-1], "count_7d"]
    (store.path(1) / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelStoreError, match="not the job's MODEL_FEATURES"):
        store.validate(1)


def test_a_model_trained_on_other_features_is_refused(store):
    text = (store.path(1) / "model.txt").read_text()
    renamed = text.replace("count_24h", "count_7d")
    assert renamed != text
    (store.path(1) / "model.txt").write_text(renamed)
    with pytest.raises(ModelStoreError, match="are not the job's MODEL_FEATURES"):
        store.validate(1)
