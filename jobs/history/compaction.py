"""Compaction of the lake: each complete partition's files merged into one.

The job's filesystem sinks (sql_templates/sinks/lake.sql.j2) commit a file into every partition
they wrote to at each checkpoint: an hour's partition holds about one file per checkpoint
interval (60 at the default minute), a day about 1,440 per table. Flink's own `auto-compaction`
only merges the files of one checkpoint. Compaction is what a table format's "optimize" does:
a partition that is complete (its `_SUCCESS` file) and quiet (no file newer than `min_age`) gets
its files rewritten as one, sorted as a backtest reads them.

A `fraudctl` reader never sees a row twice or misses one, and an interrupted compaction is
finished by the next one:
1. the merged file is written hidden (`.compacting-<id>.parquet`) and its row count checked;
2. a hidden manifest (`.compaction.json`) names the inputs and the output;
3. the inputs are hidden, the output revealed, the hidden inputs deleted, the manifest deleted.
Steps 2 and 3 run under the lake's exclusive lock (`lake.lake_lock`), which the reads of
`fraudctl` on this machine share, so none of them falls between "inputs hidden" and "output
revealed" (other readers may, for that instant: a partition briefly short of rows, or a file
gone mid-read). A crash leaves the manifest, and the next compaction rolls forward from it (or
back, when the merged file does not hold the manifest's rows). One compaction runs at a time
(`compaction_lock`): two would merge the same files twice.

The job itself is unaffected: a late transaction that lands in a compacted partition gets a
file of its own there, merged by the next compaction; and a job restored from a checkpoint
whose files were since merged finds them committed: Flink's commit after recovery is a no-op
when the pending file is gone, on local and HDFS filesystems. Flink's S3 committer instead
fails on it: on S3, keep `min_age` above the age of any checkpoint or savepoint you might
restore.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from config import Settings
from jobs.history.lake import SUCCESS, TABLES, LakeError, filesystem, lake_lock, lock_file

MANIFEST = ".compaction.json"
# the order a backtest reads rows in (jobs/history/lake.py transactions), per table
SORT_KEYS = {
    "transactions": ["event_time", "kafka_partition", "kafka_offset"],
    "dead_letters": ["detected_at", "kafka_partition", "kafka_offset"],
}


@dataclass(frozen=True)
class PartitionCompaction:
    """What compaction did, or would do, to one partition."""

    table: str
    partition: str  # dt=YYYY-MM-DD/hr=HH
    files: int  # the data files merged (0: left alone, see `skipped`)
    rows: int
    bytes_before: int
    bytes_after: int  # 0 in a dry run
    skipped: str | None = None  # why it was left alone


def _is_data_file(name: str) -> bool:
    """A committed data file: Flink hides what it has not committed (`.`) and its markers (`_`)."""
    return not name.startswith((".", "_"))


def _partitions(fs: Any, root: str, table: str) -> dict[str, list[Any]]:
    """Each partition directory of `table` (path relative to the table) -> its files' infos."""
    import pyarrow.fs as pafs

    base = f"{root}/{table}"
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return {}
    out: dict[str, list[Any]] = defaultdict(list)
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        if info.type == pafs.FileType.File:
            out[info.path.rsplit("/", 1)[0].removeprefix(base + "/")].append(info)
    return dict(out)


def _exists(fs: Any, path: str) -> bool:
    import pyarrow.fs as pafs

    return fs.get_file_info(path).type == pafs.FileType.File


def _rows(fs: Any, path: str) -> int | None:
    """The rows a Parquet file's footer declares; None when it cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path, filesystem=fs).num_rows
    except (OSError, pa.ArrowException):
        return None


def _files(fs: Any, directory: str) -> list[Any]:
    """The files in one partition directory."""
    import pyarrow.fs as pafs

    found = fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return [i for i in found if i.type == pafs.FileType.File]


def _finish(fs: Any, directory: str) -> None:
    """Finish an interrupted compaction of `directory` from its manifest: forward when its
    merged file holds the rows the manifest says, else back (the inputs visible again, the
    merged file deleted); nothing to do without a manifest. Under the exclusive lock, and only
    one compaction at a time (`compaction_lock`)."""
    path = f"{directory}/{MANIFEST}"
    if not _exists(fs, path):
        return
    with fs.open_input_stream(path) as stream:
        manifest = json.loads(stream.read())
    temp, output = (f"{directory}/{manifest[k]}" for k in ("temp", "output"))
    inputs = [f"{directory}/{name}" for name in manifest["inputs"]]

    def hidden(p: str) -> str:
        head, name = p.rsplit("/", 1)
        return f"{head}/.merged-{name}"

    merged = temp if _exists(fs, temp) else output
    if _rows(fs, merged) == manifest["rows"]:
        for p in inputs:
            if _exists(fs, p):
                fs.move(p, hidden(p))
        if merged == temp:
            fs.move(temp, output)
        for p in inputs:
            if _exists(fs, hidden(p)):
                fs.delete_file(hidden(p))
    else:  # the merged file is missing or cut short: the inputs are the partition's rows
        if any(not _exists(fs, p) and not _exists(fs, hidden(p)) for p in inputs):
            raise LakeError(
                f"{directory}: its merged file {merged} does not hold the {manifest['rows']} "
                "rows its manifest says and some inputs are gone; left as it is, to look at"
            )
        for p in inputs:
            if _exists(fs, hidden(p)):
                fs.move(hidden(p), p)
        for p in (temp, output):
            if _exists(fs, p):
                fs.delete_file(p)
    fs.delete_file(path)


def _remove_leftovers(fs: Any, directory: str, infos: list[Any]) -> bool:
    """Delete what a compaction killed before its manifest leaves: a hidden merged file, a
    manifest not yet moved into place (the one compaction running is this one); whether there
    was any."""
    leftovers = [
        i
        for i in infos
        if i.base_name.startswith(".compacting-") or i.base_name == MANIFEST + ".tmp"
    ]
    for info in leftovers:
        fs.delete_file(info.path)
    return bool(leftovers)


def _merge(fs: Any, directory: str, table: str, names: list[str]) -> tuple[str, int]:
    """The partition's `names` written as one hidden file, sorted; (its name, its rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [pq.read_table(f"{directory}/{n}", filesystem=fs) for n in names]
    try:
        merged = pa.concat_tables(parts)
    except pa.ArrowInvalid as exc:  # files of job versions with different columns
        raise LakeError(f"its files' schemas differ: {exc}") from exc
    keys = [k for k in SORT_KEYS[table] if k in merged.column_names]
    merged = merged.sort_by([(k, "ascending") for k in keys])
    temp = f".compacting-{uuid.uuid4().hex}.parquet"
    pq.write_table(merged, f"{directory}/{temp}", filesystem=fs, compression="snappy")
    written = _rows(fs, f"{directory}/{temp}")
    if written != merged.num_rows:
        fs.delete_file(f"{directory}/{temp}")
        raise LakeError(f"wrote {written} rows of {merged.num_rows}; left as it was")
    return temp, merged.num_rows


def _swap(
    settings: Settings, fs: Any, directory: str, names: list[str], temp: str, rows: int
) -> str:
    """Put the merged file `temp` in place of `names`; its final name."""
    output = f"compacted-{uuid.uuid4().hex}.parquet"
    manifest = {"inputs": names, "temp": temp, "output": output, "rows": rows}
    with lake_lock(settings, exclusive=True):
        if _exists(fs, f"{directory}/{MANIFEST}") or not all(
            _exists(fs, f"{directory}/{n}") for n in names
        ):
            fs.delete_file(f"{directory}/{temp}")
            raise LakeError("its files changed while they were merged; left as it is")
        staged = f"{directory}/{MANIFEST}.tmp"
        with fs.open_output_stream(staged) as stream:
            stream.write(json.dumps(manifest).encode())
        fs.move(staged, f"{directory}/{MANIFEST}")  # whole or not at all
        _finish(fs, directory)
    return output


@contextlib.contextmanager
def compaction_lock(settings: Settings) -> Iterator[None]:
    """One compaction at a time on this machine: two would merge the same files twice."""
    held = contextlib.ExitStack()
    try:  # only the acquisition: the caller's own errors pass through as they are
        held.enter_context(
            lock_file(settings, "lake-compaction.lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
        )
    except BlockingIOError:
        raise LakeError("another `fraudctl lake compact` is running on this machine") from None
    with held:
        yield


def compact(
    settings: Settings,
    min_age: dt.timedelta = dt.timedelta(minutes=10),
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[PartitionCompaction]:
    """Merge the files of every complete, quiet partition of the lake's tables into one each;
    what was (or, with `dry_run`, would be) done per partition with more than one file. A
    partition that cannot be merged is reported with the reason and left as it was."""
    import pyarrow as pa

    fs, root = filesystem(settings)
    done = []
    with compaction_lock(settings):
        for table in TABLES:
            for partition, infos in sorted(_partitions(fs, root, table).items()):
                try:
                    result = _compact_partition(
                        settings, fs, f"{root}/{table}", table, partition, infos, min_age,
                        dry_run, progress,
                    )  # fmt: skip
                except (LakeError, OSError, ValueError, pa.ArrowException) as exc:
                    result = PartitionCompaction(table, partition, 0, 0, 0, 0, f"error: {exc}")
                if result is not None:
                    done.append(result)
    return done


def _compact_partition(
    settings: Settings,
    fs: Any,
    base: str,
    table: str,
    partition: str,
    infos: list[Any],
    min_age: dt.timedelta,
    dry_run: bool,
    progress: Callable[[str], None] | None,
) -> PartitionCompaction | None:
    """`compact` of one partition; None when it holds fewer than two files."""
    directory = f"{base}/{partition}"
    if not dry_run:
        unfinished = any(i.base_name == MANIFEST for i in infos)
        if unfinished:
            with lake_lock(settings, exclusive=True):
                _finish(fs, directory)
        if _remove_leftovers(fs, directory, infos) or unfinished:
            infos = _files(fs, directory)
    data = sorted((i for i in infos if _is_data_file(i.base_name)), key=lambda i: i.path)
    if len(data) < 2:
        return None
    size = sum(i.size for i in data)
    rows = 0
    for i in data:
        n = _rows(fs, i.path)
        if n is None:
            raise LakeError(f"{i.base_name} cannot be read as Parquet")
        rows += n
    skipped = None
    if not any(i.base_name == SUCCESS for i in infos):
        skipped = "not complete (no _SUCCESS yet)"
    elif dt.datetime.now(dt.UTC) - max(i.mtime for i in infos) < min_age:
        skipped = f"written to in the last {min_age}"
    if skipped or dry_run:
        return PartitionCompaction(table, partition, len(data), rows, size, 0, skipped)
    if progress:
        progress(f"compacting {table}/{partition}: {len(data)} files, {rows:,} rows")
    names = [i.base_name for i in data]
    temp, merged_rows = _merge(fs, directory, table, names)
    output = _swap(settings, fs, directory, names, temp, merged_rows)
    after = fs.get_file_info(f"{directory}/{output}").size
    return PartitionCompaction(table, partition, len(data), rows, size, after)
