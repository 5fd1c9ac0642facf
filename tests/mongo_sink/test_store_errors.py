"""Which MongoDB failures make the sink keep the batch and retry, and which are the write's fault.

A collection stand-in raises the error pymongo would raise; what is tested is the sink's reading
of it, so no server is needed. The live outage itself is in `test_sink_faults.py`.
"""

from typing import Any

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError, OperationFailure

from config import load_settings
from fraudctl import mongo
from mongo_sink import store


class RaisingCollection:
    """Raises `exc` from every write and index call."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def insert_many(self, docs: list[dict[str, Any]], ordered: bool) -> None:
        raise self.exc

    def bulk_write(self, ops: list[Any], ordered: bool) -> None:
        raise self.exc

    def create_index(self, keys: list[tuple[str, int]]) -> None:
        raise self.exc


# what FerretDB answered an insert that was running while it was stopped (CI, 2026-12-01)
FERRETDB_STOPPED = OperationFailure(
    "[msg_insert.go:168 handler.(*Handler).MsgInsert] context canceled",
    code=1,
    details={"ok": 0.0, "errmsg": "context canceled", "code": 1, "codeName": "InternalError"},
)


@pytest.mark.parametrize("strategy", ["insert_first", "upsert"])
@pytest.mark.parametrize(
    "exc",
    [
        FERRETDB_STOPPED,
        OperationFailure("shutting down", code=91),
        OperationFailure("interrupted at shutdown", code=11600),
        OperationFailure("reply cut off"),
        AutoReconnect("connection closed"),
    ],
    ids=["ferretdb-stopped", "shutdown", "interrupted", "no-code", "reconnect"],
)
def test_server_going_away_keeps_the_batch_for_a_retry(exc: Exception, strategy: str) -> None:
    with pytest.raises(mongo.MongoUnavailable):
        store.write(RaisingCollection(exc), [{"_id": "a"}], strategy)  # type: ignore[arg-type]


def test_index_creation_while_the_server_stops_is_retried() -> None:
    settings = load_settings()
    m = settings.mongo
    names = (m.alerts_collection, m.window_stats_collection, m.dead_letters_collection)
    db = {name: RaisingCollection(FERRETDB_STOPPED) for name in names}
    with pytest.raises(mongo.MongoUnavailable):
        store.ensure_indexes(db, settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["insert_first", "upsert"])
@pytest.mark.parametrize(
    "exc",
    [OperationFailure("document too large", code=10334), OperationFailure("bad value", code=2)],
    ids=["too-large", "bad-value"],
)
def test_a_refused_command_reaches_the_caller_not_the_retry_loop(
    exc: Exception, strategy: str
) -> None:
    # the caller (the sink) fails loudly; taken for an outage, the batch would retry forever
    with pytest.raises(OperationFailure):  # MongoUnavailable is not one
        store.write(RaisingCollection(exc), [{"_id": "a"}], strategy)  # type: ignore[arg-type]


def test_a_bulk_error_without_write_concern_errors_is_not_an_outage() -> None:
    # a bulk error's code (65) is not a server state: its write errors are judged one by one
    exc = BulkWriteError({"writeErrors": [], "nInserted": 0})
    result = store.write(RaisingCollection(exc), [{"_id": "a"}], "upsert")  # type: ignore[arg-type]
    assert result.rejected == []
