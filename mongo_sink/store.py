"""MongoDB side of the sink: indexes and idempotent bulk writes keyed by `_id`.

Two write strategies give the same end state (the last version of each `_id` wins):

- `upsert`: one unordered `bulk_write` of `ReplaceOne(_id, doc, upsert=True)`. Ideal on MongoDB.
- `insert_first` (default): `insert_many(ordered=False)`; the documents refused as duplicates
  (`E11000`) are read back by `_id` and replaced only where they differ. Replays therefore
  write nothing. This exists because FerretDB v1.24 (SQLite backend) scans the whole
  collection for every update/upsert by `_id` (measured: ~100 upserts/s at 5,000 documents,
  slower as the collection grows) while inserts run at thousands per second.

Connection-level failures (server down, timeouts) raise `MongoUnavailable`; the caller retries
the same batch. Per-document refusals other than duplicates are returned to the caller, which
sends those records to the dead-letter collection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    PyMongoError,
)

from config import Settings
from fraudctl.mongo import raise_if_unavailable

log = logging.getLogger(__name__)

Strategy = Literal["insert_first", "upsert"]
DUPLICATE_KEY = 11000

# ReplaceOne operations per update command. FerretDB v1.24 (SQLite backend) keeps one of its
# 100 pooled connections per statement until the whole command ends, so a command of more than
# ~100 replacements waits for a connection forever and hangs that database for every client
# (measured: 99 finish in 0.4 s, 120 never do). Chunks of 50 leave room for concurrent readers.
REPLACE_CHUNK = 50

# (collection role, index keys); names are MongoDB's defaults
ALERT_INDEXES: list[list[tuple[str, int]]] = [
    [("rule", ASCENDING)],
    [("severity", ASCENDING)],
    [("user_id", ASCENDING)],
    [("card_last4", ASCENDING)],
    [("entity_id", ASCENDING)],
    [("event_time_dt", DESCENDING)],
    [("detected_at_dt", DESCENDING)],
]
WINDOW_INDEXES: list[list[tuple[str, int]]] = [
    [("granularity", ASCENDING), ("window_start", ASCENDING)],
    [("granularity", ASCENDING), ("window_start_dt", ASCENDING)],
]
DEAD_LETTER_INDEXES: list[list[tuple[str, int]]] = [[("reason", ASCENDING)]]


@dataclass
class WriteResult:
    """What one `write` did: counts, and documents MongoDB refused (not retryable)."""

    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in docs, reason)


def ensure_indexes(db: Database, settings: Settings) -> None:
    """Create the query indexes (idempotent: existing indexes are kept)."""
    m = settings.mongo
    for coll_name, specs in (
        (m.alerts_collection, ALERT_INDEXES),
        (m.window_stats_collection, WINDOW_INDEXES),
        (m.dead_letters_collection, DEAD_LETTER_INDEXES),
    ):
        coll = db[coll_name]
        for keys in specs:
            try:
                coll.create_index(keys)
            except PyMongoError as exc:
                raise_if_unavailable(exc)
                raise


def _dup_and_rejected(exc: BulkWriteError) -> tuple[list[int], list[tuple[int, str]]]:
    dups, rejected = [], []
    for err in exc.details.get("writeErrors", []):
        if err.get("code") == DUPLICATE_KEY:
            dups.append(err["index"])
        else:
            rejected.append((err["index"], f"mongo_rejected:{err.get('code')}"))
    return dups, rejected


def write(
    coll: Collection,
    docs: Sequence[dict[str, Any]],
    strategy: Strategy,
) -> WriteResult:
    """Write `docs` (distinct `_id`s) idempotently; raise MongoUnavailable on connection loss."""
    result = WriteResult()
    if not docs:
        return result
    try:
        if strategy == "upsert":
            return _upsert(coll, docs, range(len(docs)), result)
        try:
            coll.insert_many(list(docs), ordered=False)
            result.inserted = len(docs)
            return result
        except BulkWriteError as exc:
            raise_if_unavailable(exc)
            dups, rejected = _dup_and_rejected(exc)
            result.rejected.extend(rejected)
            result.inserted = exc.details.get("nInserted", 0)
        if dups:
            _replace_if_changed(coll, docs, dups, result)
        return result
    except PyMongoError as exc:
        raise_if_unavailable(exc)
        raise


def _replace_if_changed(
    coll: Collection,
    docs: Sequence[dict[str, Any]],
    indexes: Sequence[int],
    result: WriteResult,
) -> None:
    """Replace the already-present documents whose stored bytes differ from the new ones."""
    raw_coll = coll.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    wanted = {docs[i]["_id"]: i for i in indexes}
    # one `$in` read per batch: FerretDB scans the collection for it, but one scan per batch
    # beats one `find_one` per duplicate there (measured), and MongoDB serves it by index
    stored = {d["_id"]: d.raw for d in raw_coll.find({"_id": {"$in": list(wanted)}})}
    changed = []
    for doc_id, i in wanted.items():
        if stored.get(doc_id) == bson.encode(docs[i]):
            result.unchanged += 1
        else:
            changed.append(i)
    if changed:
        _upsert(coll, docs, changed, result)


def _upsert(
    coll: Collection, docs: Sequence[dict[str, Any]], indexes: Sequence[int], result: WriteResult
) -> WriteResult:
    """Replace (or insert) `docs[i]` for each of `indexes`, REPLACE_CHUNK per command."""
    for start in range(0, len(indexes), REPLACE_CHUNK):
        _upsert_chunk(coll, docs, indexes[start : start + REPLACE_CHUNK], result)
    return result


def _upsert_chunk(
    coll: Collection, docs: Sequence[dict[str, Any]], indexes: Sequence[int], result: WriteResult
) -> None:
    ops = [ReplaceOne({"_id": docs[i]["_id"]}, docs[i], upsert=True) for i in indexes]
    try:
        res = coll.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        raise_if_unavailable(exc)
        retry = []
        for err in exc.details.get("writeErrors", []):
            idx = indexes[err["index"]]
            if err.get("code") == DUPLICATE_KEY:  # two concurrent upserts of one _id: retry
                retry.append(idx)
            else:
                result.rejected.append((idx, f"mongo_rejected:{err.get('code')}"))
        res_details = exc.details
        result.inserted += res_details.get("nUpserted", 0)
        result.replaced += res_details.get("nMatched", 0)
        if retry:
            _upsert(coll, docs, retry, result)
        return
    result.inserted += res.upserted_count
    result.replaced += res.matched_count
