"""The benchmarks' summary of the TaskManagers' memory over a run (pure logic)."""

from __future__ import annotations

from benchmarks.common import memory_summary

MB = 1024 * 1024


def _tm(heap_used_mb: float, young: int, young_ms: float, full: int = 0) -> dict[str, float]:
    return {
        "heap_used": heap_used_mb * MB,
        "heap_max": 3000 * MB,
        "G1_Young_Generation.count": young,
        "G1_Young_Generation.ms": young_ms,
        "G1_Old_Generation.count": full,
        "G1_Old_Generation.ms": full * 2000.0,
    }


def test_collections_count_from_the_first_reading_to_the_last_summed_over_taskmanagers():
    jvm = [
        {"a": _tm(100, 10, 500), "b": _tm(50, 4, 100)},
        {"a": _tm(2500, 40, 3500, full=1), "b": _tm(700, 9, 400)},
        {"a": _tm(900, 60, 6500, full=2), "b": _tm(800, 14, 600)},
    ]
    summary = memory_summary(jvm, [1000 * MB, 4200 * MB, 3900 * MB])
    assert summary["collections"] == {
        "G1_Old_Generation": {"collections": 2, "seconds": 4.0},
        "G1_Young_Generation": {"collections": 50 + 10, "seconds": 6.0 + 0.5},
    }
    # peaks as sampled, the heaps of both TaskManagers added up at each reading
    assert summary["heap_peak_mb"] == 2500 + 700
    assert summary["heap_max_mb"] == 6000
    assert summary["resident_peak_mb"] == 4200


def test_a_taskmanager_that_restarted_counts_its_collections_from_zero_again():
    # a counter lower than at the first reading: a new JVM, whose whole count is the run's
    jvm = [{"a": _tm(100, 30, 3000)}, {"a": _tm(100, 5, 200)}]
    young = memory_summary(jvm, [])["collections"]["G1_Young_Generation"]
    assert young == {"collections": 5, "seconds": 0.2}


def test_no_readings_give_zeros_not_an_error():
    assert memory_summary([], []) == {
        "heap_max_mb": 0,
        "heap_peak_mb": 0,
        "resident_peak_mb": 0,
        "collections": {},
    }
