"""The on-call figures as PromQL, in one place: `fraudctl top` reads them, the dashboard
(monitoring/grafana/dashboards/fraud-detection.json) plots the same series, and
docs/monitoring.md explains each.

Where the job's figures come from (names as Flink's Prometheus reporter exposes them, measured
on Flink 2.2.1; docs/contract.md, "Metrics: the Flink job"):

- every rule has its own Kafka sink, `<rule>_alerts_kafka`; the sink's writer is the operator
  `<rule>_alerts_kafka_<n>_:_Writer` (the reporter replaces `[`, `]`, `:` and spaces of
  `<rule>_alerts_kafka[<n>]: Writer` with `_`; `<n>` is the planner's operator number), and its
  `numRecordsIn` counts the alerts it wrote (the `..._:_Committer` operator counts committables,
  not alerts);
- the dead letters by reason: the job's Java function `count_dead_letter` (connector/,
  frauddetection.functions.CountDeadLetter) counts each in the counter `dead_letters` of its
  group `reason=<reason>`, which the reporter exposes with the label `reason` (a reason's series
  appears with its first dead letter); the late events are also the writer of the
  `late_event_dead_letters_kafka` sink;
- the de-duplication of re-delivered transactions is the planner's `Deduplicate_<n>_` operator
  keyed by `transaction_id`; the rules' cooldowns are `Deduplicate_<n>_` operators too, each
  chained to its rule's alert sink, so the transactions' one is the Deduplicate whose task
  (`task_name`, the chain of operators) holds no `_alerts_kafka` sink;
- the rules' run-time parameter versions: the Python UDF's gauge `rule.<rule>.version_applied`
  (udfs/rule_parameters.py), which the reporter exposes with the label `rule`.

Flink's counters restart from 0 when a job restarts (a new task attempt): totals here are
since the job (or its last restart) began; `increase()` and `rate()` are not fooled by that.
"""

from __future__ import annotations

from dataclasses import dataclass

_OPERATOR_IN = "flink_taskmanager_job_task_operator_numRecordsIn"
_OPERATOR_OUT = "flink_taskmanager_job_task_operator_numRecordsOut"
_ALERT_WRITER = "(.+)_alerts_kafka_[0-9]+_:_Writer"
_DEAD_LETTERS = "flink_taskmanager_job_task_operator_reason_dead_letters"
_DEDUP = 'operator_name=~"Deduplicate_[0-9]+_",task_name!~".*_alerts_kafka_.*"'


def _writer(metric: str, regex: str, label: str, window: str | None = None) -> str:
    """`metric` of the writers whose operator name matches `regex`, summed by job and by
    `label` (the regex's group); with `window`: the increase over it, rounded (Prometheus
    extrapolates an increase to the window's edges: 1 alert reads 1.02)."""
    selector = f'{metric}{{operator_name=~"{regex}"}}'
    if window:
        selector = f"increase({selector}[{window}])"
    labelled = f'label_replace({selector}, "{label}", "$1", "operator_name", "{regex}")'
    summed = f"sum by (job_name, {label}) ({labelled})"
    return f"round({summed})" if window else summed


# alerts each rule's sink wrote since the job (re)started, by Flink job and rule
ALERTS_BY_RULE = _writer(_OPERATOR_IN, _ALERT_WRITER, "rule")
# ... in the last 5 minutes
ALERTS_BY_RULE_5M = _writer(_OPERATOR_IN, _ALERT_WRITER, "rule", "5m")
# dead letters by the contract's reason (bad_amount, missing_field:card_number, not_json,
# late_event, ...), since the job (re)started and in the last 5 minutes
DEAD_LETTERS_BY_REASON = f"sum by (job_name, reason) ({_DEAD_LETTERS})"
DEAD_LETTERS_BY_REASON_5M = f"round(sum by (job_name, reason) (increase({_DEAD_LETTERS}[5m])))"
# transactions behind the watermark, dead-lettered for the windows and patterns (still judged
# per transaction)
LATE_EVENTS = (
    "sum by (job_name) "
    f'({_OPERATOR_IN}{{operator_name=~"late_event_dead_letters_kafka_[0-9]+_:_Writer"}})'
)
# re-delivered transactions counted once: the de-duplication's records in minus out
REDELIVERIES = (
    f"sum by (job_name) ({_OPERATOR_IN}{{{_DEDUP}}}) - "
    f"sum by (job_name) ({_OPERATOR_OUT}{{{_DEDUP}}})"
)
# version of each rule's run-time parameters the job has applied (-1: reader not started);
# the lowest over the Python operators that read fraud_rules
RULE_VERSIONS = "min by (job_name, rule) (flink_taskmanager_job_task_operator_rule_version_applied)"
# records of the input topic the job's sources have not read yet
JOB_INPUT_LAG = "sum by (job_name) (flink_taskmanager_job_task_operator_pendingRecords)"
# the last completed checkpoint's duration, ms
CHECKPOINT_DURATION_MS = "max by (job_name) (flink_jobmanager_job_lastCheckpointDuration)"
FAILED_CHECKPOINTS = "max by (job_name) (flink_jobmanager_job_numberOfFailedCheckpoints)"
RESTARTS = "max by (job_name) (flink_jobmanager_job_numRestarts)"
# share of each second a task (a chain of operators) was busy / back-pressured, 0..1, the
# busiest subtask
BUSY = "max by (job_name, task_name) (flink_taskmanager_job_task_busyTimeMsPerSecond) / 1000"
BACKPRESSURED = (
    "max by (job_name, task_name) (flink_taskmanager_job_task_backPressuredTimeMsPerSecond) / 1000"
)
# fraudctl sink and fraudctl notify (their own endpoints)
SINK_LAG = "sum by (topic) (fraud_sink_consumer_lag)"
SINK_WRITTEN = "sum by (collection) (fraud_sink_documents_written_total)"
NOTIFY_LAG = "sum by (topic) (fraud_notify_consumer_lag)"
NOTIFICATIONS = "sum by (destination, outcome) (fraud_notify_notifications_total)"
# scrape targets up, by Prometheus job (flink: the reporter range, whose unused ports are down)
TARGETS_UP = "sum by (job) (up)"


@dataclass(frozen=True)
class Figure:
    """One section of `fraudctl top`: its title, query, the labels that name a row and the
    unit of the value."""

    title: str
    query: str
    labels: tuple[str, ...]
    unit: str = ""


FIGURES: tuple[Figure, ...] = (
    Figure("alerts by rule (since job start)", ALERTS_BY_RULE, ("job_name", "rule")),
    Figure("alerts by rule (last 5 min)", ALERTS_BY_RULE_5M, ("job_name", "rule")),
    Figure(
        "dead letters by reason (since job start)", DEAD_LETTERS_BY_REASON, ("job_name", "reason")
    ),
    Figure(
        "dead letters by reason (last 5 min)", DEAD_LETTERS_BY_REASON_5M, ("job_name", "reason")
    ),
    Figure("late events", LATE_EVENTS, ("job_name",)),
    Figure("re-deliveries counted once", REDELIVERIES, ("job_name",)),
    Figure("rule versions applied", RULE_VERSIONS, ("job_name", "rule")),
    Figure("job input lag (records)", JOB_INPUT_LAG, ("job_name",)),
    Figure("last checkpoint duration", CHECKPOINT_DURATION_MS, ("job_name",), "ms"),
    Figure("failed checkpoints", FAILED_CHECKPOINTS, ("job_name",)),
    Figure("restarts", RESTARTS, ("job_name",)),
    Figure("busiest tasks (busy share)", BUSY, ("job_name", "task_name"), "ratio"),
    Figure("back-pressured tasks", BACKPRESSURED, ("job_name", "task_name"), "ratio"),
    Figure("sink consumer lag (records)", SINK_LAG, ("topic",)),
    Figure("sink documents written", SINK_WRITTEN, ("collection",)),
    Figure("notify consumer lag (records)", NOTIFY_LAG, ("topic",)),
    Figure("notifications", NOTIFICATIONS, ("destination", "outcome")),
    Figure("scrape targets up", TARGETS_UP, ("job",)),
)
