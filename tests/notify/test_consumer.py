"""The Kafka loop's pure parts: which records become notifications, which offsets are
committed, and polling while a long batch settles."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from notify import consumer as nc
from notify.consumer import consumer_config, select, settle_polling
from tests.notify.fakes import alert


class Msg:
    def __init__(self, partition: int, offset: int, value: bytes | None, error=None) -> None:
        self._p, self._o, self._v, self._e = partition, offset, value, error

    def topic(self) -> str:
        return "fraud_alerts"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes | None:
        return self._v

    def error(self):
        return self._e


def rec(partition: int, offset: int, doc: dict) -> Msg:
    return Msg(partition, offset, json.dumps(doc).encode())


def test_select_keeps_the_first_of_each_severe_alert_and_commits_past_every_record() -> None:
    seen: list[str] = []
    msgs = [
        rec(0, 10, alert(1)),
        rec(0, 11, alert(2, severity="HIGH")),
        Msg(1, 5, b"{not json"),
        rec(1, 6, alert(1, detected_at="2026-11-21T23:00:00.000Z")),  # a re-sent copy
        rec(1, 7, alert(3)),
    ]
    batch = select(msgs, "CRITICAL", seen.append)
    assert [a["alert_id"] for a in batch.alerts] == [alert(1)["alert_id"], alert(3)["alert_id"]]
    assert batch.offsets == {("fraud_alerts", 0): 12, ("fraud_alerts", 1): 8}
    assert seen == ["notify", "below_min_severity", "invalid", "notify", "notify"]
    high = select(msgs, "HIGH", lambda _: None)
    assert len(high.alerts) == 3


def test_consumer_reads_committed_records_and_commits_by_hand() -> None:
    from config import load_settings

    cfg = consumer_config(load_settings())
    assert cfg["isolation.level"] == "read_committed"
    assert cfg["enable.auto.commit"] is False and cfg["group.id"] == "fraud-notify"


class FakeConsumer:
    def __init__(self, polled: list[Msg]) -> None:
        self.polled = polled
        self.paused: list = []
        self.resumed: list = []

    def assignment(self) -> list[str]:
        return ["p0", "p1"]

    def pause(self, parts) -> None:
        self.paused.append(list(parts))

    def resume(self, parts) -> None:
        self.resumed.append(list(parts))

    def poll(self, timeout: float):
        return self.polled.pop(0) if self.polled else None


class SlowNotifier:
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def settle(self, alerts) -> bool:
        self.release.wait(30)
        return True


def test_a_long_batch_pauses_the_partitions_and_keeps_what_polls_return(monkeypatch) -> None:
    monkeypatch.setattr(nc, "POLL_WHILE_SETTLING_S", 0.01)
    release = threading.Event()
    late = rec(1, 9, alert(9))
    fake = FakeConsumer([late])

    original_poll = fake.poll

    def poll(timeout: float):
        msg = original_poll(timeout)
        if not fake.polled:
            release.set()  # settle once the poll has been exercised
        return msg

    fake.poll = poll  # type: ignore[method-assign]
    with ThreadPoolExecutor(1) as helper:
        settled, kept = settle_polling(fake, SlowNotifier(release), [alert(1)], helper)  # type: ignore[arg-type]
    assert settled is True
    assert kept == [late]  # read while paused: the start of the next batch
    assert fake.paused[0] == ["p0", "p1"] and fake.resumed == [["p0", "p1"]]


def test_a_quick_batch_does_not_pause() -> None:
    fake = FakeConsumer([])
    release = threading.Event()
    release.set()
    with ThreadPoolExecutor(1) as helper:
        assert settle_polling(fake, SlowNotifier(release), [], helper) == (True, [])  # type: ignore[arg-type]
    assert fake.paused == [] and fake.resumed == []
