"""tests/conftest.py `pytest_runtest_setup`: a live test finds the stack whole even when a
service of it died after the previous test (Flink's TaskManager can stop itself on a cancel)."""

from __future__ import annotations

import signal
import types

import pytest

from config import Settings
from jobs.cluster.flink_client import FlinkClient
from stack import manager
from tests.conftest import pytest_runtest_setup

pytestmark = [pytest.mark.integration]


def test_a_taskmanager_that_died_is_back_before_the_next_live_test(live_stack: Settings):
    client = FlinkClient(live_stack.flink.jobmanager)
    old = manager.kill_service(live_stack, "taskmanager", signal.SIGKILL)
    next_test = types.SimpleNamespace(fixturenames=["live_stack"], nodeid="tests/next")
    pytest_runtest_setup(next_test)
    tm = next(s for s in manager.status(live_stack) if s.service == "taskmanager")
    assert tm.healthy and tm.pid != old, tm
    assert client.slot_use().total > 0, "the new TaskManager offers its task slots"
