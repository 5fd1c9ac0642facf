"""The send loop: paces the generator in wall time, writes events and truth, reports progress,
and always ends with a flush and a summary (also on Ctrl-C or a failing broker)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from fraudctl.times import iso_ms
from producer.generator import Event, TransactionGenerator, truth_type
from producer.sinks import Sink, SinkError, TruthFile

FLUSH_TIMEOUT_S = 15.0


@dataclass
class RunOptions:
    """How to pace and when to stop."""

    rate: float
    throttle: bool = True
    count: int | None = None
    duration_s: float | None = None
    progress: bool = True
    truth_to_topic: bool = False


@dataclass
class RunResult:
    """What happened, for the summary."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    undelivered: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    error: str | None = None
    first_event_ms: int | None = None
    last_event_ms: int | None = None
    by_kind: Counter[str] = field(default_factory=Counter)
    fraud_events: Counter[str] = field(default_factory=Counter)
    scenarios: Counter[str] = field(default_factory=Counter)
    lookalikes: Counter[str] = field(default_factory=Counter)
    truncated: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    truth_records: int = 0
    overcapacity: int = 0

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "undelivered": self.undelivered,
            "elapsed_s": round(self.elapsed_s, 3),
            "achieved_rate": round(self.achieved_rate, 1),
            "interrupted": self.interrupted,
            "error": self.error,
            "first_event_time": iso_ms(self.first_event_ms) if self.first_event_ms else None,
            "last_event_time": iso_ms(self.last_event_ms) if self.last_event_ms else None,
            "normal": self.by_kind["normal"],
            "fraud": self.by_kind["fraud"],
            "invalid": self.by_kind["invalid"],
            "lookalike": self.by_kind["lookalike"],
            "scenarios": dict(sorted(self.scenarios.items())),
            "lookalikes": dict(sorted(self.lookalikes.items())),
            "scenarios_cut_short": dict(sorted(self.truncated.items())),
            "fraud_events": dict(sorted(self.fraud_events.items())),
            "invalid_kinds": dict(sorted(self.invalid.items())),
            "truth_records": self.truth_records,
            "overcapacity_picks": self.overcapacity,
        }


class _CtrlC:
    """Turns the first Ctrl-C into a stop request checked between events, so an event and its
    truth are always written together; a second Ctrl-C raises KeyboardInterrupt as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run(
    gen: TransactionGenerator,
    sink: Sink,
    opts: RunOptions,
    truth_file: TruthFile | None = None,
    console: Console | None = None,
) -> RunResult:
    """Send until count, duration or Ctrl-C; then finish scenarios in flight, flush, report."""
    res = RunResult()
    console = console or Console(stderr=True)

    def emit(ev: Event) -> None:
        sink.send(ev.key, ev.value)
        res.sent += 1
        res.by_kind[ev.kind] += 1
        if ev.kind == "fraud":
            res.fraud_events[ev.label] += 1
        elif ev.kind == "invalid":
            res.invalid[ev.label] += 1
        t = ev.event_time_ms
        if res.first_event_ms is None or t < res.first_event_ms:
            res.first_event_ms = t
        if res.last_event_ms is None or t > res.last_event_ms:
            res.last_event_ms = t
        for record in ev.truth:
            emit_truth(record)

    def emit_truth(record: dict[str, Any]) -> None:
        res.truth_records += 1
        if record["kind"] in ("scenario", "lookalike"):
            if not record.get("complete", True):
                res.truncated[truth_type(record)] += 1
            elif record["kind"] == "scenario":
                res.scenarios[record["scenario_type"]] += 1
            else:
                res.lookalikes[record["lookalike_type"]] += 1
        if truth_file is not None:
            truth_file.write(record)
        if opts.truth_to_topic:
            key = (
                record.get("scenario_id")
                or record.get("lookalike_id")
                or record.get("transaction_id")
                or "invalid"
            )
            sink.send_truth(key.encode(), json.dumps(record, separators=(",", ":")).encode())

    progress = None
    task = None
    if opts.progress:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9.0f} ev/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        progress.start()
        total = opts.count
        if total is None and opts.duration_s and opts.throttle:
            total = int(opts.duration_s * opts.rate)  # expected, when paced
        task = progress.add_task("producing", total=total, rate=0.0)

    stop = _CtrlC()
    start = time.monotonic()
    deadline = start + opts.duration_s if opts.duration_s else None
    check_every = 1 if opts.rate <= 2000 else 16
    next_ui = start + 0.25
    slots = 0
    with stop:
        try:
            try:
                while (opts.count is None or slots < opts.count) and not stop.requested:
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        break
                    emit(gen.next_event())
                    slots += 1
                    if opts.throttle and slots % check_every == 0:
                        delay = start + slots / opts.rate - time.monotonic()
                        while delay > 0 and not stop.requested:
                            time.sleep(min(delay, 0.2))
                            delay = start + slots / opts.rate - time.monotonic()
                    if slots % 1024 == 0 or now >= next_ui:
                        sink.poll()
                        if sink.failed > max(100, res.sent // 100):
                            raise SinkError(f"deliveries are failing: {sink.last_error}")
                        if now >= next_ui:
                            next_ui = now + 0.25
                            if progress is not None:
                                progress.update(task, completed=slots, rate=slots / (now - start))
            except SinkError as exc:
                res.error = str(exc)
            res.interrupted = stop.requested
            if res.error is None and not res.interrupted:
                for ev in gen.drain():
                    emit(ev)
            else:
                # stopped early: nothing is sent ahead of its time; unfinished scenarios are
                # labelled complete=false with the transactions that did go out
                for record in gen.truncate():
                    emit_truth(record)
            res.interrupted = stop.requested
        finally:
            try:
                res.undelivered = sink.flush(FLUSH_TIMEOUT_S)
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting for the broker
                res.interrupted = True
                res.undelivered = sink.flush(0)
            res.elapsed_s = time.monotonic() - start
            res.delivered = sink.delivered
            res.failed = sink.failed
            if res.error is None and (res.failed or res.undelivered) and sink.last_error:
                res.error = sink.last_error
            res.overcapacity = gen.overcapacity
            if progress is not None:
                progress.update(task, completed=slots, rate=res.achieved_rate)
                progress.stop()
            if truth_file is not None:
                truth_file.close()
            sink.close()
    return res
