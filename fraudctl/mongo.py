"""MongoDB as every part of the product reaches it: a client with short timeouts, the database,
and which errors mean "not reachable right now" (retry) rather than "this write is wrong"."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from config import Settings

# errors that mean "MongoDB is not reachable right now": retry the whole batch
TRANSIENT = (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

# command failures that mean "the server is going away or not reachable", not "this write is
# wrong": retry the whole batch. InternalError (1) is how FerretDB answers a command that was
# running while it shut down ("context canceled"); a retried batch is idempotent.
UNAVAILABLE_CODES = frozenset(
    {
        None,  # no code: the reply was cut off
        1,  # InternalError
        6,  # HostUnreachable
        7,  # HostNotFound
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
    }
)


class MongoUnavailable(RuntimeError):
    """MongoDB did not acknowledge a write; nothing may be committed, retry the batch."""


def client_for(settings: Settings, timeout_ms: int | None = None) -> MongoClient:
    """A client with short timeouts, so an absent server is noticed in seconds, not 30 s."""
    timeout = timeout_ms or settings.mongo.server_timeout_ms
    return MongoClient(
        settings.mongo.uri,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        # generous: FerretDB can take tens of seconds for a big batch under load, and a timed
        # out write is retried (harmlessly, but it must not loop); a dead server closes sockets
        socketTimeoutMS=300_000,
        appname="fraud-mongo-sink",
    )


def database(client: MongoClient, settings: Settings) -> Database:
    return client[settings.mongo.database]


def raise_if_unavailable(exc: PyMongoError) -> None:
    """Raise MongoUnavailable if `exc` says the server is unreachable rather than the write
    bad."""
    if isinstance(exc, TRANSIENT):
        raise MongoUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if isinstance(exc, BulkWriteError):
        if exc.details.get("writeConcernErrors"):
            raise MongoUnavailable(f"write concern: {exc.details['writeConcernErrors']}") from exc
    elif isinstance(exc, OperationFailure) and exc.code in UNAVAILABLE_CODES:
        raise MongoUnavailable(f"{type(exc).__name__}: {exc}") from exc
