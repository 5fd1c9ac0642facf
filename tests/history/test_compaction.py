"""`fraudctl lake compact` (jobs/history/compaction.py) over lakes of hand-written rows laid out
as the job's filesystem sink lays them out: one file per checkpoint in each partition, hidden
in-progress files, `_SUCCESS` once a partition is complete."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from config import load_settings
from fraudctl.app import app
from jobs.history import compaction, lake
from tests.history import lake_rows

runner = CliRunner()
T0 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
COMPLETE = "dt=2026-11-30/hr=10"  # three checkpoints' files and _SUCCESS
OPEN = "dt=2026-11-30/hr=11"  # two checkpoints' files, not complete yet


def _checkpoint_file(directory: Path, name: str, first: int, count: int, hour: int) -> None:
    """A file as one checkpoint commits it: `count` transactions in arrival order (not sorted
    by event time), without the partition columns (they are the directory's)."""
    rows = [
        lake_rows.row(
            f"t-{hour}-{n}",
            f"C{n % 3}",
            T0.replace(hour=hour) + dt.timedelta(seconds=60 - n),
            "9.99",
        )
        for n in range(first, first + count)
    ]
    table = pa.Table.from_pylist(rows, schema=lake_rows.SCHEMA).drop_columns(["dt", "hr"])
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, directory / name)


@pytest.fixture
def settings(tmp_path):
    tables = tmp_path / "lake" / "transactions"
    for k, (first, count) in enumerate([(0, 5), (5, 3), (8, 4)]):
        _checkpoint_file(tables / COMPLETE, f"part-abc-0-{k}", first, count, 10)
    (tables / COMPLETE / "_SUCCESS").touch()
    for k, (first, count) in enumerate([(0, 2), (2, 2)]):
        _checkpoint_file(tables / OPEN, f"part-abc-0-{k + 3}", first, count, 11)
    (tables / OPEN / ".part-abc-0-5.inprogress.1234").write_bytes(b"being written")
    return load_settings(lake={"path": str(tmp_path / "lake")}, stack={"data_dir": str(tmp_path)})


def _ids(settings) -> Counter:
    data = lake.dataset(settings, "transactions")
    return Counter(data.to_table(columns=["transaction_id"])["transaction_id"].to_pylist())


def _files(settings, partition: str) -> list[str]:
    return sorted(p.name for p in (Path(settings.lake.path) / "transactions" / partition).iterdir())


def test_a_complete_partitions_files_become_one_holding_each_row_once_in_event_time_order(
    settings,
):
    before = _ids(settings)
    done = compaction.compact(settings, min_age=dt.timedelta(0))
    assert _ids(settings) == before
    assert set(before.values()) == {1}
    merged = [f for f in _files(settings, COMPLETE) if not f.startswith("_")]
    assert len(merged) == 1, _files(settings, COMPLETE)
    assert "_SUCCESS" in _files(settings, COMPLETE)
    table = pq.read_table(Path(settings.lake.path) / "transactions" / COMPLETE / merged[0])
    times = table["event_time"].to_pylist()
    assert times == sorted(times) and table.num_rows == 12
    assert "dt" not in table.schema.names and "hr" not in table.schema.names  # the directory's
    assert table.schema.field("amount").type == pa.decimal128(18, 2)
    assert table.schema.field("event_time").type == pa.timestamp("ms")
    by_partition = {c.partition: c for c in done}
    assert by_partition[COMPLETE].files == 3 and by_partition[COMPLETE].rows == 12
    assert by_partition[COMPLETE].skipped is None and by_partition[COMPLETE].bytes_after > 0


def test_a_partition_still_open_or_recently_written_is_left_alone(settings):
    open_files = _files(settings, OPEN)
    done = {c.partition: c for c in compaction.compact(settings, min_age=dt.timedelta(0))}
    assert "no _SUCCESS" in done[OPEN].skipped
    assert _files(settings, OPEN) == open_files  # the in-progress file too
    complete_files = _files(settings, COMPLETE)
    fresh = compaction.compact(settings, min_age=dt.timedelta(hours=1))
    assert _files(settings, COMPLETE) == complete_files  # merged already: one file, nothing to do
    assert all(c.partition != COMPLETE for c in fresh)


def test_a_recently_written_complete_partition_waits(settings):
    files = _files(settings, COMPLETE)
    done = {c.partition: c for c in compaction.compact(settings, min_age=dt.timedelta(hours=1))}
    assert "written to in the last" in done[COMPLETE].skipped
    assert _files(settings, COMPLETE) == files


def test_a_dry_run_changes_nothing(settings):
    files = _files(settings, COMPLETE)
    done = {c.partition: c for c in compaction.compact(settings, dt.timedelta(0), dry_run=True)}
    assert done[COMPLETE].files == 3 and done[COMPLETE].skipped is None
    assert done[COMPLETE].bytes_after == 0
    assert _files(settings, COMPLETE) == files


def _interrupt(settings, hidden: int, temp_written: bool) -> None:
    """Leave COMPLETE as a compaction killed mid-way leaves it: the manifest written, `hidden`
    of the inputs hidden, the merged file there or (as if lost) not."""
    directory = Path(settings.lake.path) / "transactions" / COMPLETE
    fs, _ = lake.filesystem(settings)
    names = [f for f in _files(settings, COMPLETE) if not f.startswith(("_", "."))]
    temp, _rows = compaction._merge(fs, str(directory), "transactions", names)
    if not temp_written:
        (directory / temp).unlink()
    manifest = {"inputs": names, "temp": temp, "output": "compacted-x.parquet", "rows": 12}
    (directory / compaction.MANIFEST).write_text(json.dumps(manifest))
    for name in names[:hidden]:
        (directory / name).rename(directory / f".merged-{name}")


@pytest.mark.parametrize("hidden", [0, 2, 3])
def test_a_compaction_killed_after_its_manifest_is_finished_by_the_next(settings, hidden):
    before = _ids(settings)
    _interrupt(settings, hidden, temp_written=True)
    compaction.compact(settings, min_age=dt.timedelta(0))
    assert _ids(settings) == before
    assert _files(settings, COMPLETE) == ["_SUCCESS", "compacted-x.parquet"]


def test_a_merged_file_short_of_its_manifests_rows_is_rolled_back(settings):
    before = _ids(settings)
    _interrupt(settings, 3, temp_written=True)
    directory = Path(settings.lake.path) / "transactions" / COMPLETE
    manifest = json.loads((directory / compaction.MANIFEST).read_text())
    (directory / manifest["temp"]).write_bytes(b"cut short by a crash")
    compaction.compact(settings, min_age=dt.timedelta(hours=1))
    assert _ids(settings) == before
    assert [f for f in _files(settings, COMPLETE) if not f.startswith("part-")] == ["_SUCCESS"]


def test_a_compaction_whose_merged_file_is_lost_puts_the_inputs_back(settings):
    before = _ids(settings)
    _interrupt(settings, 2, temp_written=False)
    compaction.compact(settings, min_age=dt.timedelta(hours=1))  # too fresh to merge again
    assert _ids(settings) == before
    assert len([f for f in _files(settings, COMPLETE) if f.startswith("part-")]) == 3
    assert compaction.MANIFEST not in _files(settings, COMPLETE)


def test_leftovers_of_a_compaction_killed_before_its_manifest_are_removed(settings):
    directory = Path(settings.lake.path) / "transactions" / COMPLETE
    (directory / ".compacting-dead.parquet").write_bytes(b"half a file")
    (directory / (compaction.MANIFEST + ".tmp")).write_text('{"inputs": [')
    before = _ids(settings)
    compaction.compact(settings, min_age=dt.timedelta(0))
    assert _ids(settings) == before
    assert [f for f in _files(settings, COMPLETE) if f.startswith(".")] == []


def test_a_second_compaction_at_the_same_time_is_refused(settings):
    files = _files(settings, COMPLETE)
    refused = pytest.raises(lake.LakeError, match="another `fraudctl lake compact` is running")
    with compaction.compaction_lock(settings), refused:
        compaction.compact(settings, min_age=dt.timedelta(0))
    assert _files(settings, COMPLETE) == files


def test_a_partition_that_cannot_be_merged_is_reported_and_the_others_are_merged(settings):
    broken = Path(settings.lake.path) / "transactions" / OPEN
    (broken / "_SUCCESS").touch()
    (broken / "part-abc-0-9").write_bytes(b"not parquet")
    files = _files(settings, OPEN)
    done = {c.partition: c for c in compaction.compact(settings, min_age=dt.timedelta(0))}
    assert done[OPEN].skipped.startswith("error: ") and "part-abc-0-9" in done[OPEN].skipped
    assert _files(settings, OPEN) == files
    assert done[COMPLETE].skipped is None
    assert len([f for f in _files(settings, COMPLETE) if not f.startswith("_")]) == 1


def test_dead_letter_partitions_are_merged_in_detection_order(settings):
    directory = Path(settings.lake.path) / "dead_letters" / "dt=2026-11-30" / "hr=10"
    directory.mkdir(parents=True)
    for k, at in enumerate(["2026-11-30T10:05:00Z", "2026-11-30T10:01:00Z"]):
        letters = [{"reason": "invalid_field", "payload": "{}", "kafka_partition": 0,
                    "kafka_offset": k, "detected_at": at}]  # fmt: skip
        pq.write_table(pa.Table.from_pylist(letters), directory / f"part-dl-0-{k}")
    (directory / "_SUCCESS").touch()
    done = compaction.compact(settings, min_age=dt.timedelta(0))
    assert [(c.table, c.files, c.rows) for c in done if c.table == "dead_letters"] == [
        ("dead_letters", 2, 2)
    ]
    (merged,) = [p for p in directory.iterdir() if not p.name.startswith("_")]
    detected = pq.read_table(merged)["detected_at"].to_pylist()
    assert detected == ["2026-11-30T10:01:00Z", "2026-11-30T10:05:00Z"]


def test_a_read_of_the_lake_waits_while_a_compaction_swaps_files(settings):
    read: list[int] = []
    reader = threading.Thread(target=lambda: read.append(lake.summary(settings)[0].rows))
    with lake.lake_lock(settings, exclusive=True):
        reader.start()
        reader.join(timeout=0.5)
        assert reader.is_alive() and read == []
    reader.join(timeout=30)
    assert read == [16]


def test_the_cli_compacts_and_then_shows_one_file_per_partition(settings):
    env = {
        "FRAUD_LAKE__PATH": settings.lake.path,
        "FRAUD_STACK__DATA_DIR": str(settings.stack.data_dir),
    }
    dry = runner.invoke(app, ["lake", "compact", "--min-age", "0", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would merge 3 files of 1 partitions" in " ".join(dry.output.split())
    done = runner.invoke(app, ["lake", "compact", "--min-age", "0", "--json"], env=env)
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    merged = [p for p in document["partitions"] if p["skipped"] is None]
    assert [(p["partition"], p["files"], p["rows"]) for p in merged] == [(COMPLETE, 3, 12)]
    shown = json.loads(runner.invoke(app, ["lake", "--json"], env=env).stdout)
    transactions = next(t for t in shown["tables"] if t["table"] == "transactions")
    assert (transactions["files"], transactions["rows"]) == (3, 16)  # 1 merged + the open 2


def test_the_groups_config_option_reaches_compact(settings, tmp_path):
    config = tmp_path / "lake.yaml"
    config.write_text(
        f"lake:\n  path: {settings.lake.path}\nstack:\n  data_dir: {settings.stack.data_dir}\n"
    )
    done = runner.invoke(
        app, ["lake", "--config", str(config), "--json", "compact", "--min-age", "0"]
    )
    assert done.exit_code == 0, done.output
    assert [
        p["partition"] for p in json.loads(done.stdout)["partitions"] if p["skipped"] is None
    ] == [COMPLETE]


def test_a_negative_min_age_is_refused(settings):
    result = runner.invoke(app, ["lake", "compact", "--min-age", "-1"])
    assert result.exit_code == 2
    assert "--min-age" in result.output
