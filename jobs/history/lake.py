"""Reading the lake the job writes (sql_templates/sinks/lake.sql.j2) with pyarrow: what it holds,
and a time range of its transactions in event-time order (what a backtest replays).

The lake is Hive-style partitioned Parquet, `transactions/dt=YYYY-MM-DD/hr=HH/` and
`dead_letters/dt=.../hr=.../`; files a checkpoint has not committed yet are hidden (their names
start with `.`), and so are the `_SUCCESS` files: any Parquet reader sees exactly the committed
rows. `fraudctl lake compact` (jobs/history/compaction.py) merges a complete partition's files;
the reads here share the lake's lock with it, so none of them sees a partition mid-swap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import Settings

TABLES = ("transactions", "dead_letters")
SUCCESS = "_SUCCESS"  # the sinks' mark of a complete partition


class LakeError(RuntimeError):
    """The lake cannot be read, or holds nothing for what was asked."""


@contextlib.contextmanager
def lock_file(settings: Settings, name: str, operation: int) -> Iterator[None]:
    """`flock(operation)` held on the lock file `name` beside the stack's data (not beside the
    lake, which may be remote): the lake's locks on this machine."""
    path = Path(settings.stack.resolve(settings.stack.data_dir)) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, operation)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def lake_lock(
    settings: Settings, exclusive: bool = False
) -> contextlib.AbstractContextManager[None]:
    """Shared by the reads of `fraudctl`, exclusive while a compaction swaps a partition's
    files."""
    return lock_file(settings, "lake.lock", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def filesystem(settings: Settings) -> tuple[Any, str]:
    """(pyarrow filesystem, path in it) of the lake's root."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(settings.lake_uri())
    except (ValueError, OSError) as exc:
        raise LakeError(f"the lake at {settings.lake_uri()} cannot be opened: {exc}") from exc


def dataset(settings: Settings, table: str) -> Any | None:
    """The pyarrow dataset of one of the lake's `TABLES` (dt and hr as string columns), or None
    when the job has committed nothing to it yet."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    fs, root = filesystem(settings)
    path = f"{root}/{table}"
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return None
    partitioning = ds.partitioning(
        pa.schema([("dt", pa.string()), ("hr", pa.string())]), flavor="hive"
    )
    data = ds.dataset(path, filesystem=fs, format="parquet", partitioning=partitioning)
    return data if data.files else None


@dataclass(frozen=True)
class TableSummary:
    table: str
    partitions: int
    files: int
    rows: int
    bytes: int
    oldest: str | None  # the earliest and latest time it holds (event time, or detection time)
    newest: str | None
    complete_partitions: int  # those with their _SUCCESS file


def summary(settings: Settings) -> list[TableSummary]:
    """What each of the lake's tables holds."""
    with lake_lock(settings):
        return _summary(settings)


def _summary(settings: Settings) -> list[TableSummary]:
    import pyarrow.compute as pc
    import pyarrow.fs as pafs

    fs, _ = filesystem(settings)
    out = []
    for table in TABLES:
        data = dataset(settings, table)
        if data is None:
            out.append(TableSummary(table, 0, 0, 0, 0, None, None, 0))
            continue
        partitions = {f.rsplit("/", 1)[0] for f in data.files}
        complete = sum(
            fs.get_file_info(f"{p}/{SUCCESS}").type == pafs.FileType.File for p in partitions
        )
        size = sum(info.size for info in fs.get_file_info(list(data.files)))
        column = "event_time" if table == "transactions" else "detected_at"
        times = data.to_table(columns=[column])[column]
        oldest = pc.min(times).as_py() if len(times) else None
        newest = pc.max(times).as_py() if len(times) else None
        out.append(
            TableSummary(
                table=table,
                partitions=len(partitions),
                files=len(data.files),
                rows=data.count_rows(),
                bytes=size,
                oldest=_text(oldest),
                newest=_text(newest),
                complete_partitions=complete,
            )
        )
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")
    return None if value is None else str(value)


def transactions(settings: Settings, start: dt.datetime, end: dt.datetime) -> Any:
    """The lake's transactions with `start` <= event time < `end`, sorted by event time (then
    Kafka partition and offset, so the order is the same every time), as a pyarrow Table;
    LakeError when there are none."""
    with lake_lock(settings):
        return _transactions(settings, start, end)


def _transactions(settings: Settings, start: dt.datetime, end: dt.datetime) -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    data = dataset(settings, "transactions")
    if data is None:
        raise LakeError(f"the lake at {settings.lake_uri()} holds no transactions yet")
    naive = [t.astimezone(dt.UTC).replace(tzinfo=None) for t in (start, end)]
    first_day, last_day = (t.strftime("%Y-%m-%d") for t in naive)
    selected = (
        (ds.field("dt") >= first_day)
        & (ds.field("dt") <= last_day)
        & (ds.field("event_time") >= pa.scalar(naive[0], pa.timestamp("ms")))
        & (ds.field("event_time") < pa.scalar(naive[1], pa.timestamp("ms")))
    )
    table = data.to_table(filter=selected)
    if table.num_rows == 0:
        held = next(s for s in _summary(settings) if s.table == "transactions")
        raise LakeError(
            f"the lake holds no transaction from {_text(naive[0])} to {_text(naive[1])} "
            f"(it holds {held.oldest} to {held.newest})"
        )
    return table.sort_by(
        [
            ("event_time", "ascending"),
            ("kafka_partition", "ascending"),
            ("kafka_offset", "ascending"),
        ]
    )
