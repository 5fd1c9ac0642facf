"""Compaction of the lake: each complete partition's files merged into one.

The job's filesystem sinks (sql_templates/sinks/lake.sql.j2) commit a file into every partition
they wrote to at each checkpoint: an hour's partition holds about one file per checkpoint
interval (60 at the default minute), a day about 1,440 per table. Flink's own `auto-compaction`
only merges the files of one checkpoint. Compaction is what a table format's "optimize" does:
a partition that is complete (its `_SUCCESS` file) and quiet (no file newer than `min_age`) gets
its files rewritten as one, sorted as a backtest reads them.

A reader never sees a row twice or misses one, and an interrupted compaction is finished by
the next one:
1. the merged file is written hidden (`.compacting-<id>.parquet`) and its row count checked;
2. a hidden manifest (`.compaction.json`) names the inputs and the output;
3. the inputs are hidden, the output revealed, the hidden inputs deleted, the manifest deleted.
Steps 3 run under the lake's exclusive lock (`lake.lake_lock`), which every read of the lake
by `fraudctl` shares, so no read falls between "inputs hidden" and "output revealed"; a crash
there leaves the manifest, and the next compaction rolls forward from it.

The job itself is unaffected: a late transaction that lands in a compacted partition gets a
file of its own there, merged by the next compaction; and a job restored from a checkpoint
whose files were since merged finds them committed (Flink's commit after recovery is a no-op
when the pending file is gone).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config import Settings
from jobs.history.lake import TABLES, LakeError, filesystem, lake_lock

MANIFEST = ".compaction.json"
SUCCESS = "_SUCCESS"
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


def _finish(fs: Any, directory: str) -> None:
    """Roll an interrupted compaction of `directory` forward from its manifest (or back, when its
    merged file was never written); nothing to do without a manifest. Under the exclusive lock."""
    import pyarrow.fs as pafs

    path = f"{directory}/{MANIFEST}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return
    with fs.open_input_stream(path) as stream:
        manifest = json.loads(stream.read())
    temp, output = (f"{directory}/{manifest[k]}" for k in ("temp", "output"))

    def exists(p: str) -> bool:
        return fs.get_file_info(p).type == pafs.FileType.File

    if exists(temp) or exists(output):
        for name in manifest["inputs"]:
            if exists(f"{directory}/{name}"):
                fs.move(f"{directory}/{name}", f"{directory}/.merged-{name}")
        if exists(temp):
            fs.move(temp, output)
        for name in manifest["inputs"]:
            if exists(f"{directory}/.merged-{name}"):
                fs.delete_file(f"{directory}/.merged-{name}")
    else:  # the merged file is gone: the inputs are the partition's rows, visible again
        for name in manifest["inputs"]:
            if exists(f"{directory}/.merged-{name}"):
                fs.move(f"{directory}/.merged-{name}", f"{directory}/{name}")
    fs.delete_file(path)


def _merge(fs: Any, directory: str, table: str, names: list[str]) -> tuple[str, int]:
    """The partition's `names` written as one hidden file, sorted; (its name, its rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [pq.read_table(f"{directory}/{n}", filesystem=fs) for n in names]
    try:
        merged = pa.concat_tables(parts)
    except pa.ArrowInvalid as exc:  # files of job versions with different columns
        raise LakeError(f"{directory}: its files' schemas differ: {exc}") from exc
    keys = [k for k in SORT_KEYS[table] if k in merged.column_names]
    merged = merged.sort_by([(k, "ascending") for k in keys])
    temp = f".compacting-{uuid.uuid4().hex}.parquet"
    pq.write_table(merged, f"{directory}/{temp}", filesystem=fs, compression="snappy")
    written = pq.read_metadata(f"{directory}/{temp}", filesystem=fs).num_rows
    if written != merged.num_rows:
        fs.delete_file(f"{directory}/{temp}")
        raise LakeError(f"{directory}: wrote {written} rows of {merged.num_rows}; left as it was")
    return temp, merged.num_rows


def compact(
    settings: Settings,
    min_age: dt.timedelta = dt.timedelta(minutes=10),
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[PartitionCompaction]:
    """Merge the files of every complete, quiet partition of the lake's tables into one each;
    what was (or, with `dry_run`, would be) done per partition with more than one file."""
    import pyarrow.parquet as pq

    fs, root = filesystem(settings)
    now = dt.datetime.now(dt.UTC)
    done = []
    for table in TABLES:
        for partition, infos in sorted(_partitions(fs, root, table).items()):
            directory = f"{root}/{table}/{partition}"
            if any(i.base_name == MANIFEST for i in infos) and not dry_run:
                with lake_lock(settings, exclusive=True):
                    _finish(fs, directory)
                infos = _partitions(fs, root, table).get(partition, [])
            data = sorted((i for i in infos if _is_data_file(i.base_name)), key=lambda i: i.path)
            if len(data) < 2:
                continue
            size = sum(i.size for i in data)
            rows = sum(pq.read_metadata(i.path, filesystem=fs).num_rows for i in data)
            newest = max(i.mtime for i in infos)
            skipped = None
            if not any(i.base_name == SUCCESS for i in infos):
                skipped = "not complete (no _SUCCESS yet)"
            elif now - newest < min_age:
                skipped = f"written to in the last {min_age}"
            if skipped or dry_run:
                done.append(
                    PartitionCompaction(table, partition, len(data), rows, size, 0, skipped)
                )
                continue
            if progress:
                progress(f"compacting {table}/{partition}: {len(data)} files, {rows:,} rows")
            names = [i.base_name for i in data]
            temp, merged_rows = _merge(fs, directory, table, names)
            output = f"compacted-{uuid.uuid4().hex}.parquet"
            manifest = {"inputs": names, "temp": temp, "output": output, "rows": merged_rows}
            with lake_lock(settings, exclusive=True):
                with fs.open_output_stream(f"{directory}/{MANIFEST}") as stream:
                    stream.write(json.dumps(manifest).encode())
                _finish(fs, directory)
            after = fs.get_file_info(f"{directory}/{output}").size
            done.append(PartitionCompaction(table, partition, len(data), rows, size, after))
    return done
