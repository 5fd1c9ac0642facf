"""benchmarks/memory_soak.py's sampling when Flink does not answer."""

import math
import socket

from benchmarks.memory_soak import _heap_mb
from jobs.cluster.flink_client import FlinkClient


def test_a_heap_flink_does_not_give_is_nan_and_the_soak_goes_on():
    # a port nothing listens on: the sample records NaN instead of stopping the soak
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    jm, tm = _heap_mb(FlinkClient(f"127.0.0.1:{port}", timeout_s=2))
    assert math.isnan(jm) and math.isnan(tm)
